import Foundation

/// Where the pipeline tests find the `conveyor` binary and the shared, read-only test data.
enum Paths {
    /// The repository root: three levels above the test files (`Tests/PipelineTests/*.swift`),
    /// four above this one (`Tests/PipelineTests/Support/Paths.swift`).
    static let repo: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // PipelineTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the repository

    /// `../shared` relative to the repository (env `CONVEYOR_SHARED` overrides it).
    static let shared: URL = {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_SHARED"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        return repo.deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
    }()

    /// The binary under test: env `CONVEYOR_BIN`, else `<repo>/.build/debug/conveyor`.
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_BIN"], !path.isEmpty { return path }
        return repo.appendingPathComponent(".build/debug/conveyor").path
    }()

    static let model = shared.appendingPathComponent("models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5").path
    static let labels = shared.appendingPathComponent("data/image_net_labels.json").path
    /// MobileNetV2 (a full Keras model, several times faster than InceptionV3): for tests that
    /// only need "a model", like the fault tests.
    static let mobileNet = shared.appendingPathComponent("models/mobilenet_v2/mobilenet_v2_1.0_224.h5").path
    static let mobileNetLabels = shared.appendingPathComponent("models/mobilenet_v2/labels.txt").path
    static let images = shared.appendingPathComponent("data/images", isDirectory: true)
    static let manifest = shared.appendingPathComponent("models/inception_v3/ref/manifest.json")
    static let sampleImage = images.appendingPathComponent("cat.jpg").path

    /// Where tests leave what a person may want to look at after the run (screenshots):
    /// env `CONVEYOR_TEST_OUTPUT`, else `<repo>/.build/test-output`. Kept after the run.
    static let testOutput: URL = {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_TEST_OUTPUT"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        return repo.appendingPathComponent(".build/test-output", isDirectory: true)
    }()

    /// Why the tests cannot run here, or nil when the binary and the data are all present.
    static func missingPrerequisite() -> String? {
        let fm = FileManager.default
        if !fm.isExecutableFile(atPath: binary) {
            return "the conveyor binary is missing at \(binary): build it first with `swift build --build-tests` "
                + "(the Makefile's `make test` does), or point CONVEYOR_BIN at it"
        }
        for path in [model, labels, manifest.path, sampleImage] where !fm.fileExists(atPath: path) {
            return "test data missing: \(path) (expected the shared data in \(shared.path); env CONVEYOR_SHARED overrides)"
        }
        return nil
    }
}

/// Raised when the pipeline cannot be set up or does not behave; the description says why,
/// with the tail of the relevant logs.
struct PipelineError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
