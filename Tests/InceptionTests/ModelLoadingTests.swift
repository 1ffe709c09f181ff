import Foundation
import Inception
import XCTest

/// Model files that are missing, corrupt or do not fit give clear errors.
final class ModelLoadingTests: XCTestCase {
    private func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-\(UUID().uuidString).h5").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func loadError(_ path: String) -> String {
        do {
            _ = try Model(contentsOf: path)
            return "loaded without error"
        } catch {
            return "\(error)"
        }
    }

    func testMissingFileNamesThePath() {
        let message = loadError("/nonexistent/model.h5")
        XCTAssertTrue(message.contains("/nonexistent/model.h5"), message)
    }

    func testRandomBytesAreNotAModel() throws {
        var generator = SystemRandomNumberGenerator()
        let path = try temporaryFile((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let message = loadError(path)
        XCTAssertTrue(message.contains("not an HDF5 file"), message)
    }

    func testTruncatedWeightsFileFails() throws {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: SharedData.inceptionWeights))
        let path = try temporaryFile([UInt8](data.prefix(data.count / 2)))
        let message = loadError(path)
        XCTAssertTrue(message.contains("truncated"), message)
    }

    /// The kernel of conv2d_5 is stored as [3, 3, 80, 192]: four little-endian
    /// 64-bit sizes in its dataspace message, followed by the same four as its
    /// maximum sizes (no other dataset has this shape). Changing 192 to 191 in
    /// both makes a file that HDF5 reads but that does not fit InceptionV3.
    func testWrongWeightShapeNamesTheFirstLayerThatDoesNotFit() throws {
        var bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: SharedData.inceptionWeights)))
        let dims: [UInt64] = [3, 3, 80, 192]
        let pattern = dims.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        var matches: [Int] = []
        var i = 0
        while i + pattern.count <= bytes.count {
            if bytes[i] == 3, bytes[i..<(i + pattern.count)].elementsEqual(pattern) { matches.append(i) }
            i += 1
        }
        XCTAssertEqual(matches.count, 2, "expected one dataspace (sizes and maximum sizes) with dims \(dims)")
        XCTAssertEqual(matches.last.map { $0 - (matches.first ?? 0) }, 32)
        for at in matches { bytes[at + 24] = 191 }
        let message = loadError(try temporaryFile(bytes))
        XCTAssertTrue(message.contains("conv2d_5"), message)
        XCTAssertTrue(message.contains("[3, 3, 80, 191]") && message.contains("[3, 3, 80, 192]"), message)
    }

    func testAFullModelFileIsNotMistakenForInceptionWeights() throws {
        // The LeNet file loads through its own config, not the built-in architecture.
        let model = try Model(contentsOf: SharedData.mnistLeNet)
        XCTAssertEqual(model.outputCount, 10)
        XCTAssertTrue(model.layerNames.contains("conv1"))
    }

    func testUnsupportedLayerInAConfigIsNamed() {
        let json = #"{"class_name":"Functional","config":{"name":"m","layers":[{"class_name":"InputLayer","name":"in","config":{"name":"in","batch_input_shape":[null,4,4,1]},"inbound_nodes":[]},{"class_name":"LSTM","name":"rnn","config":{"name":"rnn"},"inbound_nodes":[[["in",0,0,{}]]]}],"input_layers":[["in",0,0]],"output_layers":[["rnn",0,0]]}}"#
        XCTAssertThrowsError(try KerasModelConfig(json: json)) { error in
            XCTAssertTrue("\(error)".contains("rnn") && "\(error)".contains("LSTM"), "\(error)")
        }
        XCTAssertThrowsError(try KerasModelConfig(json: "{not json"))
    }

    func testLabelsFileMustFitTheModel() throws {
        XCTAssertThrowsError(try Labels(contentsOf: SharedData.imageNetLabels, classes: 10)) { error in
            XCTAssertTrue("\(error)".contains("1001 entries"), "\(error)")
        }
        XCTAssertThrowsError(try Labels(contentsOf: "/nonexistent/labels.txt", classes: 10))
    }
}
