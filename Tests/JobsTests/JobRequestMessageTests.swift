import Foundation
import Jobs
import MQTT
import XCTest

/// Reading request messages as the worker and the store do.
final class JobRequestMessageTests: XCTestCase {
    private let topic = Topics.requests(model: "inception_v3")
    private let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46]

    private func message(_ payload: [UInt8], _ properties: MQTTProperties = MQTTProperties()) -> MQTTMessage {
        MQTTMessage(topic: topic, payload: payload, qos: 1, retain: false, properties: properties)
    }

    func testBinaryFormCarriesFieldsInUserProperties() throws {
        let request = JobRequest(jobID: "cam1-0001", model: "inception_v3", topK: 3, submittedAt: 7, image: Data(jpeg), replyTopic: "r/1")
        let (payload, properties) = request.binaryMessage()
        XCTAssertEqual(properties.contentType, "image/jpeg")
        let decoded = try JobRequest(message: message(payload, properties))
        XCTAssertEqual(decoded, request)
    }

    func testBinaryFormWithoutIdGetsOne() throws {
        let decoded = try JobRequest(message: message(jpeg))
        XCTAssertTrue(JobID.isValid(decoded.jobID))
        XCTAssertEqual(decoded.model, "inception_v3")
        XCTAssertEqual(decoded.topK, 5)
    }

    func testJSONFormRoundTrips() throws {
        let request = JobRequest(jobID: "j1", model: "inception_v3", topK: 2, submittedAt: 9, image: Data(jpeg))
        let (payload, properties) = request.jsonMessage()
        XCTAssertEqual(try JobRequest(message: message(payload, properties)), request)
    }

    func testGarbageIsRefusedWithAReason() {
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<256).map { _ in UInt8.random(in: 0...255, using: &generator) }.filter { $0 != 0xFF }
        XCTAssertThrowsError(try JobRequest(message: message(garbage))) { error in
            XCTAssertEqual((error as? RequestDecodingError)?.reason, "payload is neither a JPEG nor valid JSON")
        }
    }

    func testJSONWithoutImageKeepsTheJobIdSoItCanBeFailed() {
        let payload = [UInt8](#"{"job_id":"x1","model":"inception_v3"}"#.utf8)
        XCTAssertThrowsError(try JobRequest(message: message(payload))) { error in
            let e = error as? RequestDecodingError
            XCTAssertEqual(e?.jobID, "x1")
            XCTAssertEqual(e?.reason, "missing field 'image_b64'")
        }
    }

    func testBadIdsAndTopKAreRefused() {
        var p = MQTTProperties()
        p.userProperties = [MQTTUserProperty(name: "job_id", value: "no/slashes")]
        XCTAssertThrowsError(try JobRequest(message: message(jpeg, p)))
        p.userProperties = [MQTTUserProperty(name: "top_k", value: "0")]
        XCTAssertThrowsError(try JobRequest(message: message(jpeg, p)))
        let wrongModel = JobRequest(jobID: "j", model: "other", image: Data(jpeg)).jsonPayload()
        XCTAssertThrowsError(try JobRequest(message: message([UInt8](wrongModel)))) { error in
            XCTAssertEqual((error as? RequestDecodingError)?.jobID, "j")
        }
    }
}
