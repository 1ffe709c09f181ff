import Foundation
import Jobs
import MQTT
import XCTest

/// How a message on a device's request topic is read: the job id the worker and the store
/// both derive from it, and the reply topic kept inside the device's namespace.
final class DeviceRequestTests: XCTestCase {
    private let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]
    private let topic = Topics.deviceRequests(device: "cam-1", model: "mobilenet")

    private func binary(_ properties: MQTTProperties, topic: String? = nil) -> MQTTMessage {
        var p = properties
        p.contentType = "image/jpeg"
        return MQTTMessage(topic: topic ?? self.topic, payload: jpeg, qos: 1, properties: p)
    }

    private func decodingError(_ message: MQTTMessage, maxBytes: Int? = nil) -> RequestDecodingError? {
        do {
            _ = try JobRequest(message: message, maxBytes: maxBytes)
            return nil
        } catch {
            return error
        }
    }

    func testTopics() {
        XCTAssertEqual(topic, "conveyor/v1/devices/cam-1/requests/mobilenet")
        XCTAssertEqual(Topics.deviceRequest(fromTopic: topic)?.device, "cam-1")
        XCTAssertEqual(Topics.deviceRequest(fromTopic: topic)?.model, "mobilenet")
        XCTAssertNil(Topics.deviceRequest(fromTopic: "conveyor/v1/devices/cam-1/replies/x"))
        XCTAssertNil(Topics.deviceRequest(fromTopic: "conveyor/v1/devices/cam-1/requests/m/extra"))
        XCTAssertNil(Topics.deviceRequest(fromTopic: Topics.requests(model: "m")))
        XCTAssertNil(Topics.model(fromRequestTopic: topic), "a device topic is not a service request topic")
        XCTAssertEqual(Topics.deviceWorkerSubscription(model: "m"), "$share/workers/conveyor/v1/devices/+/requests/m")
    }

    func testBinaryRequestWithJobIDGetsDeviceJobIDAndDefaultReplyTopic() throws {
        let request = try JobRequest(message: binary(MQTTProperties(userProperties: [
            MQTTUserProperty(name: "job_id", value: "part-7"), MQTTUserProperty(name: "top_k", value: "2"),
        ])))
        XCTAssertEqual(request.jobID, "cam-1_part-7")
        XCTAssertEqual(request.model, "mobilenet")
        XCTAssertEqual(request.topK, 2)
        XCTAssertEqual(request.replyTopic, "conveyor/v1/devices/cam-1/replies/part-7")
        XCTAssertEqual([UInt8](request.image), jpeg)
    }

    func testBinaryRequestWithoutJobIDUsesCorrelationData() throws {
        let reply = Topics.deviceReply(device: "cam-1", key: "verdicts")
        let request = try JobRequest(message: binary(MQTTProperties(responseTopic: reply, correlationData: [0x00, 0xAB, 0x10])))
        XCTAssertEqual(request.jobID, "cam-1_00ab10")
        XCTAssertEqual(request.replyTopic, reply)
    }

    func testBinaryRequestWithoutAnyKeyIsRefusedWithAReplyInTheNamespace() throws {
        let error = try XCTUnwrap(decodingError(binary(MQTTProperties())))
        XCTAssertNil(error.jobID)
        XCTAssertEqual(error.replyTopic, "conveyor/v1/devices/cam-1/replies/invalid")
        XCTAssertTrue(error.reason.contains("job_id"), error.reason)
    }

    func testReplyTopicOutsideTheNamespaceIsRefused() throws {
        for outside in ["conveyor/v1/devices/cam-2/replies/x", "conveyor/v1/results/x", "conveyor/v1/devices/cam-1/replies/",
                        "conveyor/v1/devices/cam-1/replies/+", "conveyor/v1/devices/cam-1/requests/m"] {
            let message = binary(MQTTProperties(responseTopic: outside, userProperties: [MQTTUserProperty(name: "job_id", value: "j1")]))
            let error = try XCTUnwrap(decodingError(message), outside)
            XCTAssertEqual(error.jobID, "cam-1_j1")
            XCTAssertEqual(error.replyTopic, "conveyor/v1/devices/cam-1/replies/j1", "answered on the default topic, not \(outside)")
            XCTAssertTrue(error.reason.contains("outside"), error.reason)
        }
    }

    func testJSONRequest() throws {
        let json = JobRequest(jobID: "j-9", model: "mobilenet", topK: 3, image: Data(jpeg),
                              replyTopic: "conveyor/v1/devices/cam-1/replies/line/2").jsonPayload()
        let request = try JobRequest(message: MQTTMessage(topic: topic, payload: [UInt8](json)))
        XCTAssertEqual(request.jobID, "cam-1_j-9")
        XCTAssertEqual(request.replyTopic, "conveyor/v1/devices/cam-1/replies/line/2")
        XCTAssertEqual(request.topK, 3)

        let wrongModel = JobRequest(jobID: "j-9", model: "inception_v3", image: Data(jpeg)).jsonPayload()
        let error = try XCTUnwrap(decodingError(MQTTMessage(topic: topic, payload: [UInt8](wrongModel))))
        XCTAssertEqual(error.jobID, "cam-1_j-9")
        XCTAssertEqual(error.replyTopic, "conveyor/v1/devices/cam-1/replies/j-9")

        let garbage = try XCTUnwrap(decodingError(MQTTMessage(topic: topic, payload: Array("hello".utf8))))
        XCTAssertEqual(garbage.replyTopic, "conveyor/v1/devices/cam-1/replies/invalid")
        XCTAssertTrue(garbage.reason.contains("neither a JPEG nor valid JSON"), garbage.reason)
    }

    func testDeviceNamesAndIDLength() throws {
        XCTAssertTrue(DeviceNames.isValid("cam-1"))
        XCTAssertFalse(DeviceNames.isValid("cam_1"), "'_' separates the device from its job id")
        XCTAssertFalse(DeviceNames.isValid(String(repeating: "a", count: 33)))
        let underscore = try XCTUnwrap(decodingError(binary(MQTTProperties(userProperties: [MQTTUserProperty(name: "job_id", value: "j")]),
                                                            topic: Topics.deviceRequests(device: "cam_1", model: "m"))))
        XCTAssertTrue(underscore.reason.contains("device name"), underscore.reason)

        let long = String(repeating: "x", count: 60)  // "cam-1_" + 60 > 64
        let error = try XCTUnwrap(decodingError(binary(MQTTProperties(userProperties: [MQTTUserProperty(name: "job_id", value: long)]))))
        XCTAssertNil(error.jobID)
        XCTAssertTrue(error.reason.contains("over 64"), error.reason)
        XCTAssertEqual(error.replyTopic, "conveyor/v1/devices/cam-1/replies/invalid")
    }

    func testOversizedRequestKeepsWhatCanBeRecovered() throws {
        let message = binary(MQTTProperties(userProperties: [MQTTUserProperty(name: "job_id", value: "big")]))
        let error = try XCTUnwrap(decodingError(message, maxBytes: 4))
        XCTAssertEqual(error.jobID, "cam-1_big")
        XCTAssertEqual(error.replyTopic, "conveyor/v1/devices/cam-1/replies/big")
        XCTAssertEqual(error.reason, "request of 7 bytes is over the limit of 4 bytes")
        XCTAssertNoThrow(try JobRequest(message: message, maxBytes: 7))
    }
}
