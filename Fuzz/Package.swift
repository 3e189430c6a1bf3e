// swift-tools-version: 6.1
// libFuzzer targets for usm-infer's input parsers. Built only with the fuzzer sanitizer:
//   swift build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address
// in this folder (scripts/fuzz.sh does it, and says why the last flag is needed).
// Each target defines LLVMFuzzerTestOneInput; libFuzzer supplies main (hence -parse-as-library).
import PackageDescription

let fuzzTarget: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "usm-infer-fuzz",
    dependencies: [.package(name: "usm-infer", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "USMFormat", package: "usm-infer")]),
        .executableTarget(
            name: "FuzzContainer",
            dependencies: ["FuzzSupport", .product(name: "USMFormat", package: "usm-infer"),
                           .product(name: "USMRecognizer", package: "usm-infer")],
            swiftSettings: fuzzTarget),
        .executableTarget(
            name: "FuzzContainerFile",
            dependencies: ["FuzzSupport", .product(name: "USMFormat", package: "usm-infer"),
                           .product(name: "USMRecognizer", package: "usm-infer")],
            swiftSettings: fuzzTarget),
        .executableTarget(
            name: "FuzzMetadata",
            dependencies: ["FuzzSupport", .product(name: "USMFormat", package: "usm-infer"),
                           .product(name: "USMModel", package: "usm-infer")],
            swiftSettings: fuzzTarget),
        .executableTarget(
            name: "FuzzTokenizer",
            dependencies: ["FuzzSupport", .product(name: "USMFormat", package: "usm-infer"),
                           .product(name: "USMModel", package: "usm-infer")],
            swiftSettings: fuzzTarget),
        .executableTarget(
            name: "FuzzAudio",
            dependencies: ["FuzzSupport", .product(name: "USMAudio", package: "usm-infer"),
                           .product(name: "USMModel", package: "usm-infer")],
            swiftSettings: fuzzTarget),
    ]
)
