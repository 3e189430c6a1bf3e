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
        .executableTarget(
            name: "FoundationBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "USMTensor", package: "usm-infer"),
                .product(name: "USMKernels", package: "usm-infer"),
                .product(name: "USMFormat", package: "usm-infer"),
                .product(name: "USMModel", package: "usm-infer"),
            ],
            path: "Benchmarks/FoundationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
