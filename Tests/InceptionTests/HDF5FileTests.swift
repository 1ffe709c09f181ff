import Foundation
import Inception
import XCTest

/// Reads the shared Keras HDF5 files through `HDF5File`.
final class HDF5FileTests: XCTestCase {
    /// `<repo root>/../shared/models`; the repo root is three levels above this file.
    static let modelsDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // InceptionTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repo root
        .deletingLastPathComponent()
        .appendingPathComponent("shared/models")

    static let inceptionPath = modelsDirectory
        .appendingPathComponent("inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5").path
    static let mobilenetPath = modelsDirectory.appendingPathComponent("mobilenet_v2/mobilenet_v2_1.0_224.h5").path
    static let mnistPath = modelsDirectory.appendingPathComponent("mnist_lenet/mnist_lenet.h5").path

    /// A scratch directory for the corrupt files, removed after each test.
    private var scratch: URL?

    override func tearDown() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
        scratch = nil
        super.tearDown()
    }

    private func makeScratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("HDF5FileTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        scratch = url
        return url
    }

    // MARK: - Weights file (fixed-length strings)

    func testInceptionLayerNames() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        XCTAssertEqual(file.path, Self.inceptionPath)
        XCTAssertTrue(file.hasAttribute("layer_names", at: "/"))
        let names = try file.stringsAttribute("layer_names", at: "/")
        XCTAssertEqual(names.count, 313)
        XCTAssertEqual(names.first, "input_1")
        XCTAssertEqual(names.last, "predictions")
        XCTAssertTrue(names.contains("conv2d_94"))
        XCTAssertTrue(names.contains("batch_normalization_94"))
    }

    func testInceptionScalarVariableLengthAttributes() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        XCTAssertEqual(try file.stringAttribute("backend", at: "/"), "tensorflow")
        XCTAssertEqual(try file.stringAttribute("keras_version", at: "/"), "2.21.0")
        // A scalar string read as an array is one element.
        XCTAssertEqual(try file.stringsAttribute("backend", at: "/"), ["tensorflow"])
        // An array of 313 strings is not a scalar.
        XCTAssertThrowsError(try file.stringAttribute("layer_names", at: "/"))
    }

    func testInceptionWeightNames() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "conv2d_1"), ["conv2d_1/kernel:0"])
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "/conv2d_1"), ["conv2d_1/kernel:0"])
        XCTAssertEqual(
            try file.stringsAttribute("weight_names", at: "batch_normalization_1"),
            [
                "batch_normalization_1/beta:0", "batch_normalization_1/moving_mean:0",
                "batch_normalization_1/moving_variance:0",
            ])
        XCTAssertEqual(
            try file.stringsAttribute("weight_names", at: "predictions"),
            ["predictions/kernel:0", "predictions/bias:0"])
    }

    func testWeightlessLayersHaveNoWeightNames() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        XCTAssertTrue(file.hasAttribute("weight_names", at: "input_1"))
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "input_1"), [])
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "activation_1"), [])
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "mixed10"), [])
        // An empty array is not a scalar string.
        XCTAssertThrowsError(try file.stringAttribute("weight_names", at: "input_1"))
    }

    func testEveryLayerOfTheWeightsFileIsReadable() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        var weightCount = 0
        for layer in try file.stringsAttribute("layer_names", at: "/") {
            XCTAssertTrue(file.exists(layer), layer)
            for weight in try file.stringsAttribute("weight_names", at: layer) {
                XCTAssertTrue(file.exists("\(layer)/\(weight)"), weight)
                XCTAssertFalse(try file.datasetShape("\(layer)/\(weight)").isEmpty, weight)
                weightCount += 1
            }
        }
        // 94 conv kernels + 94 * 3 batch-norm vectors + predictions kernel and bias.
        XCTAssertEqual(weightCount, 94 + 94 * 3 + 2)
    }

    func testReadConvKernel() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        let path = "conv2d_5/conv2d_5/kernel:0"
        XCTAssertTrue(file.exists(path))
        XCTAssertEqual(try file.datasetShape(path), [3, 3, 80, 192])
        let (shape, values) = try file.readFloats(path)
        XCTAssertEqual(shape, [3, 3, 80, 192])
        XCTAssertEqual(values.count, 138_240)
        XCTAssertTrue(values.contains { $0 != 0 })
        XCTAssertTrue(values.allSatisfy { $0.isFinite })
        // He initialisation: std = sqrt(2 / (3 * 3 * 80)) ≈ 0.0527.
        let mean = values.reduce(0, +) / Float(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)
        XCTAssertEqual(variance.squareRoot(), (2.0 / 720.0).squareRoot(), accuracy: 0.002)
    }

    func testReadVectorsAndDenseKernel() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        let variance = try file.readFloats("batch_normalization_1/batch_normalization_1/moving_variance:0")
        XCTAssertEqual(variance.shape, [32])
        XCTAssertTrue(variance.values.allSatisfy { $0 >= 0.5 && $0 <= 2.0 })
        let kernel = try file.readFloats("predictions/predictions/kernel:0")
        XCTAssertEqual(kernel.shape, [2048, 1000])
        XCTAssertEqual(kernel.values.count, 2_048_000)
        let bias = try file.readFloats("/predictions/predictions/bias:0")
        XCTAssertEqual(bias.shape, [1000])
        XCTAssertTrue(bias.values.allSatisfy { $0 >= -0.5 && $0 <= 0.5 })
    }

    // MARK: - Full-model files (variable-length strings)

    func testMnistModelConfigIsJSON() throws {
        let file = try HDF5File(path: Self.mnistPath)
        XCTAssertTrue(file.hasAttribute("model_config", at: "/"))
        let config = try file.stringAttribute("model_config", at: "/")
        let json = try JSONSerialization.jsonObject(with: Data(config.utf8))
        let object = try XCTUnwrap(json as? [String: Any])
        XCTAssertNotNil(object["class_name"])
        XCTAssertEqual(try file.stringAttribute("backend", at: "/"), "tensorflow")

        XCTAssertTrue(file.exists("model_weights"))
        let layers = try file.stringsAttribute("layer_names", at: "model_weights")
        XCTAssertEqual(layers, ["input", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2"])
        XCTAssertEqual(try file.stringsAttribute("weight_names", at: "model_weights/pool1"), [])
        let weights = try file.stringsAttribute("weight_names", at: "model_weights/conv1")
        XCTAssertEqual(weights, ["conv1/kernel:0", "conv1/bias:0"])
        let kernel = try file.readFloats("model_weights/conv1/\(weights[0])")
        XCTAssertEqual(kernel.shape, [5, 5, 1, 20])
        XCTAssertEqual(try file.datasetShape("model_weights/fc1/fc1/kernel:0"), [2450, 320])
    }

    func testMobilenetLayerNames() throws {
        let file = try HDF5File(path: Self.mobilenetPath)
        XCTAssertFalse(try file.stringAttribute("model_config", at: "/").isEmpty)
        let layers = try file.stringsAttribute("layer_names", at: "model_weights")
        XCTAssertFalse(layers.isEmpty)
        XCTAssertEqual(layers.count, 102)
        let conv = try XCTUnwrap(layers.first { $0 == "Conv" })
        let weights = try file.stringsAttribute("weight_names", at: "model_weights/\(conv)")
        XCTAssertEqual(weights.count, 2)
        let kernel = try file.readFloats("model_weights/\(conv)/\(weights[0])")
        XCTAssertEqual(kernel.shape, [3, 3, 3, 32])
    }

    // MARK: - Missing things

    func testMissingFile() {
        let path = "/nonexistent/dir/missing_model.h5"
        XCTAssertThrowsError(try HDF5File(path: path)) { error in
            XCTAssertTrue(error is HDF5Error)
            XCTAssertTrue(String(describing: error).contains(path), String(describing: error))
            XCTAssertTrue(String(describing: error).contains("no such file"), String(describing: error))
        }
    }

    func testMissingObjectsAndAttributes() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        XCTAssertTrue(file.exists("/"))
        XCTAssertTrue(file.exists("conv2d_1/conv2d_1"))
        XCTAssertFalse(file.exists("no_such_layer"))
        XCTAssertFalse(file.exists("no_such_layer/deeper/kernel:0"))
        XCTAssertFalse(file.exists("conv2d_1/conv2d_1/kernel:0/below_a_dataset"))
        XCTAssertFalse(file.hasAttribute("no_such_attribute", at: "/"))
        XCTAssertFalse(file.hasAttribute("weight_names", at: "no_such_layer"))

        XCTAssertThrowsError(try file.readFloats("conv2d_1/conv2d_1/kernel:1"))
        XCTAssertThrowsError(try file.readFloats("no_such_layer/no_such_layer/kernel:0"))
        XCTAssertThrowsError(try file.datasetShape("conv2d_1/conv2d_1/bias:0"))
        XCTAssertThrowsError(try file.readFloats("conv2d_1")) { error in
            XCTAssertTrue(String(describing: error).contains(Self.inceptionPath))
        }
        XCTAssertThrowsError(try file.stringsAttribute("no_such_attribute", at: "/"))
        XCTAssertThrowsError(try file.stringsAttribute("weight_names", at: "no_such_layer"))
    }

    // MARK: - Corrupt files

    func testTruncatedFileThrows() throws {
        let directory = try makeScratch()
        let original = try FileHandle(forReadingFrom: URL(fileURLWithPath: Self.inceptionPath))
        let head = try original.read(upToCount: 4096) ?? Data()
        try original.close()
        XCTAssertEqual(head.count, 4096)
        let truncated = directory.appendingPathComponent("truncated.h5")
        try head.write(to: truncated)

        // libhdf5 compares the file size with the end of file recorded in the
        // superblock, so a truncated file fails to open.
        XCTAssertThrowsError(try HDF5File(path: truncated.path)) { error in
            XCTAssertTrue(error is HDF5Error)
            XCTAssertTrue(String(describing: error).contains(truncated.path), String(describing: error))
            XCTAssertTrue(String(describing: error).contains("truncated"), String(describing: error))
        }
    }

    func testTruncatedMidDataFileThrows() throws {
        // Cut the mnist file partway: the header is intact, the data is not.
        let directory = try makeScratch()
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.mnistPath))
        let truncated = directory.appendingPathComponent("half.h5")
        try data.prefix(data.count / 2).write(to: truncated)
        XCTAssertThrowsError(try HDF5File(path: truncated.path)) { error in
            XCTAssertTrue(error is HDF5Error)
        }
    }

    func testRandomBytesThrow() throws {
        let directory = try makeScratch()
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let random = directory.appendingPathComponent("random.h5")
        try Data(bytes).write(to: random)
        XCTAssertThrowsError(try HDF5File(path: random.path)) { error in
            XCTAssertTrue(String(describing: error).contains("not an HDF5 file"), String(describing: error))
            XCTAssertTrue(String(describing: error).contains(random.path), String(describing: error))
        }

        let empty = directory.appendingPathComponent("empty.h5")
        try Data().write(to: empty)
        XCTAssertThrowsError(try HDF5File(path: empty.path))
        XCTAssertThrowsError(try HDF5File(path: directory.path))
    }

    // MARK: - Threads

    func testConcurrentReads() throws {
        let file = try HDF5File(path: Self.inceptionPath)
        let paths = (1...8).map { "conv2d_\($0)/conv2d_\($0)/kernel:0" }
        // Each iteration writes only its own slot.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: paths.count)
        results.initialize(repeating: -1)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: paths.count) { index in
            results[index] = (try? file.readFloats(paths[index]).values.count) ?? 0
            _ = try? HDF5File(path: Self.mnistPath).stringAttribute("model_config", at: "/")
        }
        for (index, path) in paths.enumerated() {
            XCTAssertEqual(results[index], try file.datasetShape(path).reduce(1, *), path)
        }
    }
}
