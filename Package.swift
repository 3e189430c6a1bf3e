// swift-tools-version: 6.1
import PackageDescription

// Layers, each depending only on the ones before it:
//   CZstd, CXXHash (system C libraries), USMIO (opening input files, the exit-status contract)
//   USMTensor   packed low-bit tensors, layouts, quantizers, size accounting
//   USMKernels  matrix products over packed tensors (reference twins first)
//   USMFormat   the container of ModelFormat.md (zstd, xxHash64)
//   USMModel    Conformer RNN-T configs, tensor inventory, recipes
//   usm-pack    command-line tool
let package = Package(
    name: "usm-infer",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "USMIO", targets: ["USMIO"]),
        .library(name: "USMTensor", targets: ["USMTensor"]),
        .library(name: "USMKernels", targets: ["USMKernels"]),
        .library(name: "USMFormat", targets: ["USMFormat"]),
        .library(name: "USMModel", targets: ["USMModel"]),
        .library(name: "USMAudio", targets: ["USMAudio"]),
        .library(name: "USMRecognizer", targets: ["USMRecognizer"]),
        .library(name: "USMCommandLine", targets: ["USMCommandLine"]),
        .library(name: "usm", type: .dynamic, targets: ["USMC"]),
        .executable(name: "usm-pack", targets: ["usm-pack"]),
        .executable(name: "usm-infer", targets: ["usm-infer"]),
        .executable(name: "usm-bench", targets: ["usm-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(
            name: "CXXHash", pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"]), .brew(["xxhash"])]),
        .systemLibrary(
            name: "CSndfile", pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"]), .brew(["libsndfile"])]),
        .systemLibrary(
            name: "CSamplerate", pkgConfig: "samplerate",
            providers: [.apt(["libsamplerate0-dev"]), .brew(["libsamplerate"])]),
        .target(name: "USMIO"),
        .target(name: "USMAudio", dependencies: ["USMIO", "CSndfile", "CSamplerate"]),
        .target(name: "USMTensor"),
        .target(name: "CUSMKernels"),
        .target(name: "USMKernels", dependencies: ["USMTensor", "CUSMKernels"]),
        .target(name: "USMFormat", dependencies: ["USMIO", "USMTensor", "CZstd", "CXXHash"]),
        .target(name: "USMModel", dependencies: ["USMIO", "USMTensor", "USMKernels", "USMFormat"]),
        .target(name: "USMRecognizer", dependencies: ["USMIO", "USMModel", "USMAudio", "USMFormat", "USMKernels", "USMTensor"]),
        .target(name: "CUSMAPI"),
        .target(name: "USMC", dependencies: ["CUSMAPI", "USMRecognizer"]),
        .target(
            name: "USMCommandLine",
            dependencies: ["USMIO", "USMRecognizer", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "usm-infer",
            dependencies: [
                "USMRecognizer", "USMModel", "USMAudio", "USMKernels", "USMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "usm-pack",
            dependencies: [
                "USMModel", "USMFormat", "USMTensor", "USMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "usm-bench",
            dependencies: [
                "USMKernels", "USMTensor", "CUSMKernels", "USMModel", "USMRecognizer", "USMFormat", "USMAudio", "USMCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "USMTestSupport", dependencies: ["USMFormat", "USMModel", "USMTensor"], path: "Tests/Support"),
        .testTarget(name: "USMTensorTests", dependencies: ["USMTensor", "USMTestSupport"]),
        .testTarget(name: "USMAudioTests", dependencies: ["USMAudio"]),
        .testTarget(name: "USMRecognizerTests", dependencies: ["USMRecognizer", "USMModel", "USMAudio", "USMFormat", "USMTensor", "USMTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "USMCommandLineTests", dependencies: ["USMTestSupport", "USMRecognizer", "USMAudio", "USMFormat", "USMModel", "USMTensor", "usm-infer", "usm-bench", "usm-pack"]),
        .testTarget(name: "USMKernelsTests", dependencies: ["USMKernels", "USMTensor", "CUSMKernels", "USMTestSupport"]),
        .testTarget(name: "USMFormatTests", dependencies: ["USMFormat", "USMTensor"], exclude: ["Golden"]),
        .testTarget(name: "USMModelTests", dependencies: ["USMModel", "USMFormat", "USMTensor", "USMKernels", "USMTestSupport"], exclude: ["Golden"]),
    ]
)
