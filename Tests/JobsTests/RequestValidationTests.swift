import Foundation
import Jobs
import MQTT
import XCTest

/// The stricter checks on request messages and `POST /predict` bodies added with the
/// bad-input suite: each refusal names its reason and keeps the job id when it is valid.
final class RequestValidationTests: XCTestCase {
    private let topic = Topics.requests(model: "mobilenet_v2")
    private let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46]

    private func binary(_ properties: [(String, String)], responseTopic: String? = nil) -> MQTTMessage {
        MQTTMessage(topic: topic, payload: jpeg, qos: 1, properties: MQTTProperties(
            responseTopic: responseTopic, contentType: "image/jpeg",
            userProperties: properties.map { MQTTUserProperty(name: $0.0, value: $0.1) }))
    }

    private func reason(_ message: MQTTMessage) -> (String?, String?) {
        do {
            _ = try JobRequest(message: message)
            return (nil, nil)
        } catch {
            return (error.reason, error.jobID)
        }
    }

    func testBinaryFieldsThatAreNotNumbersAreRefused() {
        XCTAssertEqual(reason(binary([("job_id", "a"), ("version", "latest")])).0, "version must be a non-negative integer")
        XCTAssertEqual(reason(binary([("job_id", "a"), ("version", "-1")])).0, "version must be a non-negative integer")
        XCTAssertNil(reason(binary([("job_id", "a"), ("version", "0")])).0, "TF Serving's version folders start at 0")
        XCTAssertEqual(reason(binary([("job_id", "a"), ("submitted_at", "yesterday")])).0, "submitted_at must be milliseconds since 1970")
        XCTAssertEqual(reason(binary([("job_id", "a"), ("top_k", "five")])).1, "a")
    }

    func testBinaryModelMustMatchTheTopic() {
        let (why, id) = reason(binary([("job_id", "b1"), ("model", "inception_v3")]))
        XCTAssertEqual(why, "request for model 'inception_v3' published on the topic of 'mobilenet_v2'")
        XCTAssertEqual(id, "b1")
        XCTAssertNil(reason(binary([("job_id", "b1"), ("model", "mobilenet_v2")])).0)
    }

    func testReplyTopicsWithWildcardsAreRefused() {
        XCTAssertEqual(reason(binary([("job_id", "r1")], responseTopic: "devices/+/replies")).0,
                       "reply topic must not contain the wildcards + or #")
        let json = #"{"job_id": "r2", "model": "mobilenet_v2", "image_b64": "/9j/4A==", "reply_topic": "a/#"}"#
        let (why, id) = reason(MQTTMessage(topic: topic, payload: Array(json.utf8)))
        XCTAssertEqual(why, "reply topic must not contain the wildcards + or #")
        XCTAssertEqual(id, "r2")
        XCTAssertNil(Topics.problem(withReplyTopic: "devices/cam1/replies"))
        XCTAssertNotNil(Topics.problem(withReplyTopic: ""))
    }

    func testJSONTypeMismatchNamesTheField() {
        let json = #"{"job_id": "t1", "model": "mobilenet_v2", "image_b64": "/9j/4A==", "top_k": "5"}"#
        let (why, id) = reason(MQTTMessage(topic: topic, payload: Array(json.utf8)))
        XCTAssertEqual(why, "field 'top_k' must be an integer")
        XCTAssertEqual(id, "t1")
        let (notObject, _) = reason(MQTTMessage(topic: topic, payload: Array("[1, 2]".utf8)))
        XCTAssertEqual(notObject, "payload is JSON but not a request object")
    }

    func testPredictBodies() throws {
        func refusal(_ body: String) -> String? {
            do {
                _ = try PredictRequest(json: Data(body.utf8))
                return nil
            } catch {
                return error.message
            }
        }
        XCTAssertEqual(refusal(#"{"image_data": "/9j/4A==", "top_k": true}"#), "top_k must be an integer from 1 to 1000")
        XCTAssertEqual(refusal(#"{"image_data": "/9j/4A==", "top_k": 2.5}"#), "top_k must be an integer from 1 to 1000")
        XCTAssertEqual(refusal(#"{"image_data": 7}"#), "\"image_data\" must be a string: a base64-encoded JPEG")
        XCTAssertEqual(refusal(#"{"image_data": null}"#), "missing \"image_data\": a base64-encoded JPEG")
        XCTAssertEqual(refusal(#"{"image_data": "  "}"#), "\"image_data\" is empty")
        XCTAssertEqual(refusal("[]"), "body must be a JSON object")
        let ok = try PredictRequest(json: Data(#"{"image_data": "/9j/4A==", "top_k": 1}"#.utf8))
        XCTAssertEqual(ok.topK, 1)
        XCTAssertEqual([UInt8](ok.image), [0xFF, 0xD8, 0xFF, 0xE0])
        XCTAssertEqual(try PredictRequest(json: Data(#"{"image_data": "/9j/4A==", "top_k": 5.0}"#.utf8)).topK, 5)
    }

    func testModelNamesMustBeOneTopicLevel() {
        // A model name with '/' would read back as another model's version topic.
        XCTAssertEqual(reason(binary([("job_id", "a"), ("model", "bilenet/0001")])).0, Topics.modelNameRule)
        XCTAssertEqual(reason(binary([("job_id", "a"), ("model", "a+b")])).0, Topics.modelNameRule)
        XCTAssertTrue(Topics.isValidModelName("mobilenet_v2"))
        XCTAssertFalse(Topics.isValidModelName(".."))
    }
}
