import Foundation
import Inception
import XCTest

/// TensorFlow's beginner quickstart model (Flatten(28×28) → Dense(128, relu)
/// → Dropout → Dense(10), logits) as tf_keras saves it (`model.h5`) and as
/// Keras 3 saves it (`model.keras`), against TensorFlow's logits.
final class KerasQuickstartTests: XCTestCase {
    private func logits(_ model: Model, _ images: [[Float]]) -> [[Float]] {
        let output = model.predict(images.flatMap { $0 }, batch: images.count)
        return (0..<images.count).map { Array(output[($0 * 10)..<($0 * 10 + 10)]) }
    }

    private func assertMatches(_ model: Model, reference file: String, line: UInt = #line) throws {
        let images = try Quickstart.images(20)
        let want = try Quickstart.referenceLogits(file)
        let batched = logits(model, images)
        for (n, image) in images.enumerated() {
            XCTAssertLessThan(maxAbsDiff(batched[n], want[n]), 1e-4, "image \(n) in a batch of 20", line: line)
            XCTAssertLessThan(maxAbsDiff(logits(model, [image])[0], want[n]), 1e-4, "image \(n) alone", line: line)
        }
    }

    func testTheKeras2FileGivesTensorFlowsLogits() throws {
        let model = try Model(contentsOf: Quickstart.keras2)
        XCTAssertEqual(model.inputDims, [28, 28])
        XCTAssertEqual(model.outputDims, [10])
        XCTAssertFalse(model.takesImages)
        XCTAssertEqual(model.export, KerasExport(signatureKeys: ["serving_default"], inputName: "flatten_input",
                                                 outputName: "dense_1", flatten: .anySize))
        try assertMatches(model, reference: "reference.json")
    }

    func testTheKeras3ArchiveGivesTensorFlowsLogits() throws {
        let model = try Model(contentsOf: Quickstart.keras3)
        XCTAssertEqual(model.inputDims, [28, 28])
        XCTAssertEqual(model.outputDims, [10])
        XCTAssertEqual(model.export, KerasExport(signatureKeys: ["serve", "serving_default"], inputName: "input_layer",
                                                 outputName: "output_0", flatten: .firstDimension))
        try assertMatches(model, reference: "reference_keras3.json")
    }

    func testADeflatedArchiveLoadsTheSame() throws {
        let path = try Quickstart.repacked(deflate: true)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let zip = try ZipArchive(path: path)
        XCTAssertEqual(zip.entry("model.weights.h5")?.method, 8)
        XCTAssertLessThan(zip.entry("model.weights.h5")?.compressedSize ?? .max, zip.entry("model.weights.h5")?.size ?? 0)
        try assertMatches(try Model(contentsOf: path), reference: "reference_keras3.json")
    }

    func testTheLeNetFileKeepsItsImageShapeAndNames() throws {
        let model = try SharedData.model(SharedData.mnistLeNet)
        XCTAssertEqual(model.inputDims, [28, 28, 1])
        XCTAssertTrue(model.takesImages)
        XCTAssertEqual(model.export, KerasExport(signatureKeys: ["serving_default"], inputName: "input",
                                                 outputName: "fc2", flatten: nil))
        XCTAssertNil(try SharedData.model(SharedData.inceptionWeights).export, "the weights-only file has no export")
    }

    // MARK: - Refusals

    private func loadError(_ path: String) -> String {
        do {
            _ = try Model(contentsOf: path)
            return "loaded without error"
        } catch {
            return "\(error)"
        }
    }

    func testAnUnsupportedLayerInAnArchiveIsNamed() throws {
        let path = try Quickstart.repacked { config in
            var layers = Quickstart.layers(config)
            layers[3]["class_name"] = "LayerNormalization"  // the Dropout
            layers[4]["class_name"] = "EinsumDense"         // a later unsupported layer
            Quickstart.setLayers(&config, layers)
        }
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let message = loadError(path)
        XCTAssertTrue(message.contains("layer 'dropout': unsupported layer class LayerNormalization"), message)
        XCTAssertTrue(message.contains(path), message)
    }

    func testWeightsThatDoNotFitTheConfigAreRefused() throws {
        // 64 units where the weights have 128.
        let narrow = try Quickstart.repacked { config in
            var layers = Quickstart.layers(config)
            var dense = layers[2]["config"] as! [String: Any]
            dense["units"] = 64
            layers[2]["config"] = dense
            Quickstart.setLayers(&config, layers)
        }
        // The second Dense renamed: its weights, under layers/dense_1, say they are dense_1's.
        let renamed = try Quickstart.repacked { config in
            var layers = Quickstart.layers(config)
            var dense = layers[4]["config"] as! [String: Any]
            dense["name"] = "logits"
            layers[4]["config"] = dense
            Quickstart.setLayers(&config, layers)
        }
        defer {
            for path in [narrow, renamed] { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        }
        let message = loadError(narrow)
        XCTAssertTrue(message.contains("layer 'dense'") && message.contains("[784, 128]") && message.contains("[784, 64]"), message)
        let other = loadError(renamed)
        XCTAssertTrue(other.contains("layer 'logits'") && other.contains("'dense_1'"), other)
    }

    func testDamagedArchivesAreRefusedClearly() throws {
        let bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: Quickstart.keras3)))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-zip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ name: String, _ data: [UInt8]) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try Data(data).write(to: URL(fileURLWithPath: path))
            return path
        }
        let truncated = loadError(try write("truncated.keras", Array(bytes.prefix(bytes.count / 2))))
        XCTAssertTrue(truncated.contains("not a ZIP archive"), truncated)

        // One weight byte changed: the entry no longer matches its CRC-32.
        let zip = try ZipArchive(path: Quickstart.keras3)
        let entry = try XCTUnwrap(zip.entry("model.weights.h5"))
        let header = entry.headerOffset
        let start = header + 30 + Int(bytes[header + 26]) + Int(bytes[header + 27]) << 8
            + Int(bytes[header + 28]) + Int(bytes[header + 29]) << 8
        var flipped = bytes
        flipped[start + entry.size / 2] ^= 0x40
        let crc = loadError(try write("flipped.keras", flipped))
        XCTAssertTrue(crc.contains("model.weights.h5") && crc.contains("CRC-32"), crc)

        // The central directory claims a size beyond the file.
        var oversized = bytes
        let end = try XCTUnwrap((0...(bytes.count - 22)).reversed().first { bytes[$0..<($0 + 4)].elementsEqual([0x50, 0x4B, 0x05, 0x06]) })
        oversized[end + 12] = 0xFF; oversized[end + 13] = 0xFF; oversized[end + 14] = 0xFF; oversized[end + 15] = 0x7F
        let directoryError = loadError(try write("oversized.keras", oversized))
        XCTAssertTrue(directoryError.contains("central directory"), directoryError)
    }

    func testLayersKerasAppliesDifferentlyAreRefused() throws {
        func config(input: String, layers: String) -> String {
            #"{"class_name":"Sequential","config":{"name":"m","layers":[{"class_name":"InputLayer","config":{"name":"in","batch_shape":\#(input)}},\#(layers)]}}"#
        }
        let cases: [(String, String, String)] = [
            ("[null,28,28]", #"{"class_name":"Dense","config":{"name":"d","units":4}}"#, "layer 'd': Dense applies to the last axis"),
            ("[null,28,28]", #"{"class_name":"Conv2D","config":{"name":"c","filters":4,"kernel_size":3,"padding":"valid"}}"#, "layer 'c': needs an image input"),
            ("[null,2,3,4,5]", #"{"class_name":"Flatten","config":{"name":"f"}}"#, "input layer 'in': unsupported input shape [null, 2, 3, 4, 5]"),
            ("[null,null,3]", #"{"class_name":"Flatten","config":{"name":"f"}}"#, "every dimension but the batch must be known"),
            ("[null,8]", #"{"class_name":"Dense","config":{"name":"d","units":4,"activation":{"class_name":"function","config":"gelu"}}}"#, "layer 'd': unsupported activation"),
            ("[null,8]", #"{"class_name":"Softmax","config":{"name":"s","axis":1}}"#, "layer 's': Softmax over axis 1"),
        ]
        for (input, layers, message) in cases {
            XCTAssertThrowsError(try KerasModelConfig(json: config(input: input, layers: layers))) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        let shared = #"{"class_name":"Functional","config":{"name":"m","layers":[{"class_name":"InputLayer","name":"in","config":{"name":"in","batch_input_shape":[null,4]},"inbound_nodes":[]},{"class_name":"Dense","name":"d","config":{"name":"d","units":4},"inbound_nodes":[[["in",0,0,{}]],[["d",0,0,{}]]]}],"input_layers":[["in",0,0]],"output_layers":[["d",1,0]]}}"#
        XCTAssertThrowsError(try KerasModelConfig(json: shared)) { XCTAssertTrue("\($0)".contains("shared layers"), "\($0)") }
        let twoOutputs = #"{"class_name":"Functional","config":{"name":"m","layers":[{"class_name":"InputLayer","name":"in","config":{"name":"in","batch_input_shape":[null,4]},"inbound_nodes":[]},{"class_name":"Dense","name":"a","config":{"name":"a","units":4},"inbound_nodes":[[["in",0,0,{}]]]},{"class_name":"Dense","name":"b","config":{"name":"b","units":4},"inbound_nodes":[[["in",0,0,{}]]]}],"input_layers":[["in",0,0]],"output_layers":[["a",0,0],["b",0,0]]}}"#
        XCTAssertThrowsError(try KerasModelConfig(json: twoOutputs)) { XCTAssertTrue("\($0)".contains("2 outputs (a, b)"), "\($0)") }
    }

    func testInputsAndRanksAsKerasDeclaresThem() throws {
        // tf_keras before 2.4 wrote Sequential models without an InputLayer; Keras names the input after the first layer.
        let old = try KerasModelConfig(json: #"{"class_name":"Sequential","config":{"name":"m","layers":[{"class_name":"Flatten","config":{"name":"flatten","batch_input_shape":[null,28,28]}},{"class_name":"Dense","config":{"name":"logits","units":10}}]}}"#)
        XCTAssertEqual(old.inputName, "flatten_input")
        XCTAssertEqual(old.inputDims, [28, 28])
        XCTAssertEqual(old.outputRank, 1)
        let image = try KerasModelConfig(json: #"{"class_name":"Sequential","config":{"name":"m","layers":[{"class_name":"InputLayer","config":{"name":"pixels","batch_shape":[null,8,8,3]}},{"class_name":"Conv2D","config":{"name":"c","filters":4,"kernel_size":3,"padding":"same"}}]}}"#)
        XCTAssertEqual(image.inputName, "pixels")
        XCTAssertEqual(image.outputRank, 3)
    }

    func testKerasSnakeCaseNamesWeightGroups() {
        let names = ["Dense", "Conv2D", "BatchNormalization", "DepthwiseConv2D", "ReLU", "GlobalAveragePooling2D", "InputLayer"]
        XCTAssertEqual(names.map(KerasFile.snakeCase),
                       ["dense", "conv2d", "batch_normalization", "depthwise_conv2d", "re_lu", "global_average_pooling2d", "input_layer"])
    }
}
