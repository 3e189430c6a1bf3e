// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so the library build and `swift test` do not pay for package-benchmark.
// Run from this folder: `swift package benchmark` (add `--target FoundationBenchmarks` to pick one suite).
let package = Package(
    name: "usm-infer-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "usm-infer", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        suite("FoundationBenchmarks", ["USMTensor", "USMKernels", "USMFormat", "USMModel"]),
        suite("KernelBenchmarks", ["USMTensor", "USMKernels"]),
        suite("RecognizerBenchmarks", ["USMAudio", "USMRecognizer"]),
    ]
)

/// A suite: an executable target under Benchmarks/NAME with package-benchmark's plugin and these library products.
func suite(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")]
            + products.map { .product(name: $0, package: "usm-infer") },
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}
