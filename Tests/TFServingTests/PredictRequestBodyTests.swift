import TFServing
import XCTest

final class PredictRequestBodyTests: XCTestCase {
    private let image = ServableAnnouncement.Version(version: 1, state: .available, kind: .image,
                                                     inputShape: [299, 299, 3], classes: 1000)
    /// The quickstart model, as a Keras 2 export names it.
    private let mnist = ServableAnnouncement.Version(
        version: 1, state: .available, kind: .tensor, inputShape: [28, 28], classes: 10,
        tensorSignature: .init(keys: ["serving_default"], input: "flatten_input", output: "dense_1", outputShape: [10], flatten: .anySize))

    private func parse(_ json: String, _ info: ServableAnnouncement.Version) throws -> PredictRequestBody {
        try PredictRequestBody.parse(Array(json.utf8)) { (name: String) throws(TFServingError) in
            try ModelSignatures.signature(name, for: info)
        }
    }

    private func assertInvalid(_ json: String, _ info: ServableAnnouncement.Version, contains text: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(json, info), file: file, line: line) { error in
            guard let error = error as? TFServingError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.code, .invalidArgument, file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "\(error.message)", file: file, line: line)
        }
    }

    func testTheBooksColumnarRequestWithURLSafeBase64Strings() throws {
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0xFB, 0xEF]
        let urlSafe = Data(jpeg).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
        let body = try parse(#"{"inputs": {"image": ["\#(urlSafe)"]}}"#, image)
        XCTAssertEqual(body.format, .columnar)
        XCTAssertEqual(body.signatureName, "serving_default")
        XCTAssertEqual(body.inputs["image"], Tensor(dtype: .string, shape: [1], values: .strings([Array(urlSafe.utf8)])))
    }

    func testRowFormWithB64ObjectsStacksInstances() throws {
        let body = try parse(#"{"signature_name": "scores", "instances": [{"b64": "AAEC"}, {"image": {"b64": "AwQ="}}]}"#, image)
        XCTAssertEqual(body.format, .row)
        XCTAssertEqual(body.signatureName, "scores")
        XCTAssertEqual(body.inputs["image"], Tensor(dtype: .string, shape: [2], values: .strings([[0, 1, 2], [3, 4]])))
    }

    func testNumericInstancesKeepTheirShape() throws {
        let flat = "[" + (0..<784).map { String($0 % 256) }.joined(separator: ",") + "]"
        let body = try parse(#"{"instances": [\#(flat), \#(flat)]}"#, mnist)
        XCTAssertEqual(body.inputs["flatten_input"]?.shape, [2, 784])
        XCTAssertEqual(body.inputs["flatten_input"]?.floats?[783], 15)
        let grid = "[" + (0..<28).map { _ in "[" + Array(repeating: "0.5", count: 28).joined(separator: ",") + "]" }
            .joined(separator: ",") + "]"
        let columnar = try parse(#"{"inputs": [\#(grid)]}"#, mnist)
        XCTAssertEqual(columnar.inputs["flatten_input"]?.shape, [1, 28, 28])
        let named = try parse(#"{"inputs": {"flatten_input": [\#(grid)]}}"#, mnist)
        XCTAssertEqual(named.inputs["flatten_input"]?.shape, [1, 28, 28])
        // The gRPC tutorial's REST body, one flat list, is parsed as TF Serving's json_tensor.cc parses it: shape [784].
        XCTAssertEqual(try parse(#"{"inputs": \#(flat)}"#, mnist).inputs["flatten_input"]?.shape, [784])
        XCTAssertEqual(try parse(#"{"instances": \#(flat)}"#, mnist).inputs["flatten_input"]?.shape, [784])
    }

    func testMalformedRequestsAreInvalidArguments() {
        assertInvalid("{", image, contains: "JSON Parse error")
        assertInvalid("[1]", image, contains: "must be a JSON object")
        assertInvalid(#"{"x": 1}"#, image, contains: "Missing 'inputs' or 'instances' key")
        assertInvalid(#"{"inputs": [], "instances": []}"#, image, contains: "only one of 'inputs' or 'instances'")
        assertInvalid(#"{"instances": []}"#, image, contains: "non-empty list")
        assertInvalid(#"{"instances": [{"b64": "%%%"}]}"#, image, contains: "Unable to base64 decode")
        assertInvalid(#"{"instances": [5]}"#, image, contains: "expects DT_STRING")
        assertInvalid(#"{"instances": [[1, 2], [3]]}"#, mnist, contains: "same shape")
        assertInvalid(#"{"inputs": [[1, 2], [3]]}"#, mnist, contains: "rectangular")
        assertInvalid(#"{"inputs": [[1, [2]]]}"#, mnist, contains: "rectangular")
        assertInvalid(#"{"inputs": [["a"]]}"#, mnist, contains: "expects DT_FLOAT numbers")
        assertInvalid(#"{"inputs": [[1e39]]}"#, mnist, contains: "out of range for DT_FLOAT")
        assertInvalid(#"{"inputs": {"pixels": [[1]]}}"#, mnist, contains: "alias not found in signature: pixels")
        assertInvalid(#"{"signature_name": "nope", "inputs": [[1]]}"#, mnist,
                      contains: #"Serving signature name: "nope" not found"#)
        assertInvalid(#"{"signature_name": 3, "inputs": [[1]]}"#, mnist, contains: "'signature_name' must be a string")
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        assertInvalid(#"{"inputs": \#(deep)}"#, mnist, contains: "JSON Parse error")
        assertInvalid("{\"inputs\": \"\u{FFFD}\"}".replacingOccurrences(of: "\u{FFFD}", with: "\\ud800"), image,
                      contains: "JSON Parse error")
    }

    func testInvalidUTF8IsRejected() {
        var bytes = Array(#"{"inputs": ["x"]}"#.utf8)
        bytes[12] = 0xFF
        XCTAssertThrowsError(try PredictRequestBody.parse(bytes) { (name: String) throws(TFServingError) in
            try ModelSignatures.signature(name, for: self.image)
        }) { XCTAssertTrue("\($0)".contains("JSON Parse error"), "\($0)") }
    }
}
