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
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .target(
            name: "Inception",
            dependencies: ["COpenBLAS", "CTurboJPEG", "CHDF5"],
            swiftSettings: optimised
        ),
        .executableTarget(
            name: "Conveyor",
            dependencies: [
                "Inception",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "InceptionTests",
            dependencies: ["Inception"],
            swiftSettings: optimised
        ),
    ]
)
