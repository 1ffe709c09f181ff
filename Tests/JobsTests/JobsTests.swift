import Foundation
import Jobs
import XCTest

final class JobsTests: XCTestCase {
    func testRequestRoundTripsThroughJSON() throws {
        let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])
        let request = JobRequest(jobID: "abc", model: "inception_v3", topK: 3, submittedAt: 42, image: jpeg)
        let decoded = try JSONDecoder().decode(JobRequest.self, from: request.jsonPayload())
        XCTAssertEqual(decoded, request)
        let text = String(decoding: request.jsonPayload(), as: UTF8.self)
        XCTAssertTrue(text.contains(#""image_b64":"\#(jpeg.base64EncodedString())""#), text)
    }

    func testDurationInMilliseconds() {
        XCTAssertEqual(Duration.seconds(24 * 3600).milliseconds, 86_400_000)
        XCTAssertEqual(Duration.milliseconds(1_500).milliseconds, 1_500)
        XCTAssertEqual(Duration.microseconds(2_999).milliseconds, 2)
    }

    func testBadBase64IsADecodingError() {
        let json = Data(#"{"job_id":"a","model":"m","image_b64":"***"}"#.utf8)
        XCTAssertThrowsError(try JSONDecoder().decode(JobRequest.self, from: json))
    }

    func testBase64ToleratesLineBreaksAndURLSafeAlphabet() {
        let bytes = Data((0..<200).map { UInt8($0) })
        let wrapped = bytes.base64EncodedString(options: .lineLength76Characters)
        XCTAssertTrue(wrapped.contains("\r\n"))
        XCTAssertEqual(Base64.decode(wrapped), bytes)
        let urlSafe = bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        XCTAssertEqual(Base64.decode(urlSafe), bytes)
        XCTAssertNil(Base64.decode("a"))
        XCTAssertNil(Base64.decode(""))
    }

    func testResultCarriesTheBookShape() throws {
        let result = JobResult(jobID: "j", model: "inception_v3", status: .succeeded,
                               top: [ClassScore(index: 285, label: "Egyptian cat", score: 0.9)])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.jsonPayload()) as? [String: Any])
        XCTAssertEqual(object["prediction"] as? String, "Egyptian cat")
        XCTAssertEqual(object["status"] as? String, "succeeded")
        let queued = JobResult(jobID: "j", model: "m", status: .queued)
        XCTAssertEqual(queued.prediction, "")
        XCTAssertEqual(try JSONDecoder().decode(JobResult.self, from: result.jsonPayload()), result)
    }

    func testResultBatchSizeIsOptionalJSON() throws {
        var result = JobResult(jobID: "j", model: "m", status: .succeeded, batchSize: 4)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.jsonPayload()) as? [String: Any])
        XCTAssertEqual(object["batch_size"] as? Int, 4)
        XCTAssertEqual(try JSONCoding.decoder.decode(JobResult.self, from: result.jsonPayload()).batchSize, 4)
        result.batchSize = nil
        let without = try XCTUnwrap(JSONSerialization.jsonObject(with: result.jsonPayload()) as? [String: Any])
        XCTAssertNil(without["batch_size"], "absent, not null, when the job never reached the engine")
        // A result from a worker that predates batching.
        let old = Data(#"{"job_id": "j", "model": "m", "status": "succeeded", "top": [], "timings": {"inference_ms": 5}, "worker": "w"}"#.utf8)
        let decoded = try JSONCoding.decoder.decode(JobResult.self, from: old)
        XCTAssertNil(decoded.batchSize)
        XCTAssertEqual(decoded.timings.inferenceMs, 5)
    }

    func testJobIDsAreURLSafeAndCarry128RandomBits() {
        let ids = (0..<1000).map { _ in JobID.make() }
        XCTAssertEqual(Set(ids).count, 1000)
        for id in ids {
            XCTAssertEqual(id.count, 22)
            XCTAssertTrue(JobID.isValid(id), id)
        }
        XCTAssertFalse(JobID.isValid(""))
        XCTAssertFalse(JobID.isValid("a/b"))
        XCTAssertFalse(JobID.isValid(String(repeating: "a", count: 65)))
    }

    func testTopics() {
        XCTAssertEqual(Topics.requests(model: "inception_v3"), "conveyor/v1/requests/inception_v3")
        XCTAssertEqual(Topics.workerSubscription(model: "m"), "$share/workers/conveyor/v1/requests/m")
        XCTAssertEqual(Topics.jobID(fromTopic: Topics.result(job: "xyz")), "xyz")
        XCTAssertEqual(Topics.model(fromRequestTopic: "conveyor/v1/requests/m"), "m")
        XCTAssertNil(Topics.model(fromRequestTopic: "conveyor/v1/requests/m/extra"))
    }
}
