// swift-tools-version: 6.1
import PackageDescription

/// The engine is far too slow unoptimised, and the tests run it on full
/// InceptionV3, so its module is always compiled with optimisation, even in a
/// debug build (`swift test`).
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
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
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP only (protobuf or JSON): the gRPC exporter is not needed.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries, one shim each.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // The inference engine.
        .target(
            name: "Inception",
            dependencies: ["COpenBLAS", "CTurboJPEG", "CHDF5", "CZlib"],
            swiftSettings: optimised
        ),
        // MQTT over libmosquitto, used by every service.
        .target(
            name: "MQTT",
            dependencies: [
                "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        // Metrics (swift-metrics onto a Prometheus registry), health probes, JSON logs.
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The job contract: topics, request and result messages.
        .target(name: "Jobs", dependencies: ["MQTT"]),
        .target(
            name: "Worker",
            dependencies: [
                "Inception", "MQTT", "Jobs", "ModelRepository", "TFServing", "Observability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // How other services talk to the result store over MQTT: the query client, its
        // queries and answers. Light on purpose: no database in a front end.
        .target(
            name: "StoreClient",
            dependencies: ["MQTT", "Jobs", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "ResultStore",
            dependencies: [
                "MQTT", "Jobs", "Observability", "StoreClient",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Ingress",
            dependencies: [
                "Inception", "MQTT", "Jobs", "StoreClient", "TFServing", "TFServingAPI", "TFServingGRPC", "Observability",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // A link to the repository's openapi.yaml, served at GET /openapi.yaml, and the
            // web console's page, served at /.
            resources: [.embedInCode("openapi.yaml"), .embedInCode("Console/index.html"),
                        .embedInCode("Console/console.js"), .embedInCode("Console/console.css")]
        ),
        // TF Serving's REST and gRPC contract: tensors, signatures, the model catalog.
        .target(name: "TFServing", dependencies: ["Jobs"]),
        // TF Serving's messages and services, generated from Protos/ by
        // scripts/generate-protos.sh (committed: CI never runs protoc).
        .target(
            name: "TFServingAPI",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // TF Serving's gRPC services (generated) and tensor conversions.
        .target(
            name: "TFServingGRPC",
            dependencies: [
                "TFServing", "TFServingAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // Model versions on disk: TF Serving's config file, version policies, polling.
        .target(
            name: "ModelRepository",
            dependencies: [
                "Jobs", "TFServingAPI",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Starting daemons with a clean signal mask.
        .target(name: "Spawn"),
        // Runs a private mosquitto for tests.
        .target(name: "TestBroker", dependencies: ["Spawn"]),
        .executableTarget(
            name: "Conveyor",
            dependencies: [
                "Inception", "MQTT", "Jobs", "Worker", "ResultStore", "Ingress", "Spawn", "ModelRepository",
                "TFServing", "TFServingAPI", "TFServingGRPC", "Observability",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
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
        .testTarget(name: "TFServingTests", dependencies: ["TFServing", "Jobs"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "Jobs"]),
        .testTarget(
            name: "IngressTests",
            dependencies: [
                "Ingress", "Jobs", "MQTT", "TFServing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "ModelRepositoryTests", dependencies: ["ModelRepository"]),
        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "TestBroker"]),
        .testTarget(
            name: "ObservabilityTests",
            dependencies: [
                "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(name: "DeploymentTests"),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "Jobs", "MQTT", "TestBroker", "Inception", "Spawn",
                // An in-process OTLP/HTTP receiver for the tracing test.
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "ResultStoreTests",
            dependencies: [
                "ResultStore", "StoreClient", "Jobs", "MQTT", "TestBroker",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
