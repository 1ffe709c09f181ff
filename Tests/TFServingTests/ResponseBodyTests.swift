import TFServing
import XCTest

final class ResponseBodyTests: XCTestCase {
    func testSingleOutputIsWrittenDirectly() {
        let prediction = Tensor.strings(["Siamese cat", "tabby"], shape: [2])
        XCTAssertEqual(PredictResponseBody.encode([("prediction", prediction)], format: .columnar).serialized,
                       #"{"outputs":["Siamese cat","tabby"]}"#)
        XCTAssertEqual(PredictResponseBody.encode([("prediction", prediction)], format: .row).serialized,
                       #"{"predictions":["Siamese cat","tabby"]}"#)
    }

    func testSeveralOutputsAreKeyedByName() {
        let classes = Tensor.strings(["a", "b"], shape: [1, 2])
        let scores = Tensor.floats([0.75, 0.1], shape: [1, 2])
        XCTAssertEqual(PredictResponseBody.encode([("classes", classes), ("scores", scores)], format: .row).serialized,
                       #"{"predictions":[{"classes":["a","b"],"scores":[0.75,0.1]}]}"#)
        XCTAssertEqual(PredictResponseBody.encode([("classes", classes), ("scores", scores)], format: .columnar).serialized,
                       #"{"outputs":{"classes":[["a","b"]],"scores":[[0.75,0.1]]}}"#)
    }

    func testBinaryOutputsAndClassifyResults() {
        let bytes = Tensor(dtype: .string, shape: [1], values: .strings([[0xFF, 0x00]]))
        XCTAssertEqual(PredictResponseBody.encode([("raw_bytes", bytes)], format: .columnar).serialized,
                       #"{"outputs":[{"b64":"/wA="}]}"#)
        XCTAssertEqual(ClassifyRequestBody.encode([[("cat", 0.5), ("dog", 0.25)]]).serialized,
                       #"{"result":[[["cat",0.5],["dog",0.25]]]}"#)
        XCTAssertEqual(JSONValue.string("a\"b\\\n\u{1}").serialized, #""a\"b\\\n\u0001""#)
    }

    func testClassifyBodyReadsTheSignaturesFeatureWithContext() throws {
        let info = ServableAnnouncement.Version(version: 1, state: .available, kind: .image,
                                                inputShape: [224, 224, 3], classes: 1000)
        let lookup = { (name: String) throws(TFServingError) -> Signature in
            try ModelSignatures.signature(name, for: info)
        }
        let body = try ClassifyRequestBody.parse(Array(#"{"signature_name": "classify", "examples": [{"image": {"b64": "AAE="}}, {}], "context": {"image": {"b64": "Ag=="}}}"#.utf8),
                                                 signature: lookup)
        XCTAssertEqual(body.input, Tensor(dtype: .string, shape: [2], values: .strings([[0, 1], [2]])))
        XCTAssertThrowsError(try ClassifyRequestBody.parse(Array(#"{"examples": [{"img": "x"}]}"#.utf8), signature: lookup)) {
            XCTAssertTrue("\($0)".contains("has no feature 'image'"), "\($0)")
        }
    }
}
