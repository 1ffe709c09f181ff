// swift-tools-version: 6.1
import PackageDescription

/// The engine is far too slow unoptimised, and the tests run it on full
/// InceptionV3, so its module is always compiled with optimisation, even in a
/// debug build (`swift test`).
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "conveyor", targets: ["Conveyor"]),
        .library(name: "Inception", targets: ["Inception"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // C libraries, one shim each.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),

        // The inference engine.
        .target(
            name: "Inception",
            dependencies: ["COpenBLAS", "CTurboJPEG", "CHDF5"],
            swiftSettings: optimised
        ),
        // MQTT over libmosquitto, used by every service.
        .target(
            name: "MQTT",
            dependencies: ["CMosquitto", .product(name: "Logging", package: "swift-log")]
        ),
        // The job contract: topics, request and result messages.
        .target(name: "Jobs", dependencies: ["MQTT"]),
        .target(
            name: "Worker",
            dependencies: [
                "Inception", "MQTT", "Jobs",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ResultStore",
            dependencies: [
                "MQTT", "Jobs",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Ingress",
            dependencies: [
                "Inception", "MQTT", "Jobs", "ResultStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // A link to the repository's openapi.yaml, served at GET /openapi.yaml.
            resources: [.embedInCode("openapi.yaml")]
        ),
        // Starting daemons with a clean signal mask.
        .target(name: "Spawn"),
        // Runs a private mosquitto for tests.
        .target(name: "TestBroker", dependencies: ["Spawn"]),
        .executableTarget(
            name: "Conveyor",
            dependencies: [
                "Inception", "MQTT", "Jobs", "Worker", "ResultStore", "Ingress", "Spawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Fuzz targets (Fuzz/). In a normal build each replays the files it is given;
        // scripts/fuzz.sh builds them with libFuzzer (-sanitize=fuzzer,address -D FUZZING)
        // in .build-fuzz.
        .target(name: "FuzzHarness", path: "Fuzz/Harness"),
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .executableTarget(name: "FuzzJPEGDecode", dependencies: ["Inception", "FuzzHarness", "CFuzzDriver"], path: "Fuzz/Targets/JPEGDecode"),
        .executableTarget(name: "FuzzRequestJSON", dependencies: ["Jobs", "FuzzHarness", "CFuzzDriver"], path: "Fuzz/Targets/RequestJSON"),
        .executableTarget(name: "FuzzMQTTPayload", dependencies: ["Jobs", "MQTT", "FuzzHarness", "CFuzzDriver"], path: "Fuzz/Targets/MQTTPayload"),
        .testTarget(
            name: "InceptionTests",
            dependencies: ["Inception"],
            swiftSettings: optimised
        ),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "MQTT"]),
        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "TestBroker"]),
        .testTarget(name: "DeploymentTests"),
        .testTarget(name: "PipelineTests", dependencies: ["Jobs", "MQTT", "TestBroker", "Inception", "Spawn"]),
        .testTarget(
            name: "ResultStoreTests",
            dependencies: [
                "ResultStore", "Jobs", "MQTT", "TestBroker",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
