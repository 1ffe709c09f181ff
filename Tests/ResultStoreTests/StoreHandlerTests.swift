import Foundation
import Jobs
import MQTT
@testable import StoreClient
import XCTest

@testable import ResultStore

/// The service's message handlers, fed messages directly (no broker).
final class StoreHandlerTests: XCTestCase {
    private var directory: URL!
    private var database: JobDatabase!
    private var service: ResultStoreService!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-store-handlers-\(UUID().uuidString)")
        let path = directory.appendingPathComponent("jobs.sqlite").path
        database = try JobDatabase(path: path)
        service = ResultStoreService(configuration: ResultStoreConfiguration(databasePath: path), database: database)
    }

    override func tearDownWithError() throws {
        try? database.close()
        try? FileManager.default.removeItem(at: directory)
    }

    private let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]

    func testJSONRequestIsRecordedQueued() async throws {
        let request = JobRequest(jobID: "json-1", model: "inception_v3", version: 3, topK: 2, submittedAt: 1_111,
                                 image: Data(jpeg))
        let (payload, properties) = request.jsonMessage()
        await service.handleRequest(MQTTMessage(topic: Topics.requests(model: "inception_v3"), payload: payload,
                                                qos: 1, properties: properties))
        let job = try await database.job("json-1")
        XCTAssertEqual(job?.status, .queued)
        XCTAssertEqual(job?.model, "inception_v3")
        XCTAssertEqual(job?.version, 3)
        XCTAssertEqual(job?.timings.queuedAt, 1_111)
    }

    func testBinaryRequestIsRecordedFromUserProperties() async throws {
        let request = JobRequest(jobID: "bin-1", model: "inception_v3", version: 1, topK: 5, submittedAt: 2_222,
                                 image: Data(jpeg))
        let (payload, properties) = request.binaryMessage()
        XCTAssertEqual(properties.contentType, "image/jpeg")
        await service.handleRequest(MQTTMessage(topic: Topics.requests(model: "inception_v3"), payload: payload,
                                                qos: 1, properties: properties))
        let job = try await database.job("bin-1")
        XCTAssertEqual(job?.status, .queued)
        XCTAssertEqual(job?.version, 1)
        XCTAssertEqual(job?.timings.queuedAt, 2_222)
    }

    func testUndecodableRequestsAreSkipped() async throws {
        let topic = Topics.requests(model: "inception_v3")
        // Not JSON, not a JPEG.
        await service.handleRequest(MQTTMessage(topic: topic, payload: Array("hello".utf8)))
        // JSON without an image.
        await service.handleRequest(MQTTMessage(topic: topic, payload: Array(#"{"job_id":"bad-1","model":"inception_v3"}"#.utf8)))
        // A JPEG without job_id: the worker makes an id up, the store learns it from the result.
        await service.handleRequest(MQTTMessage(topic: topic, payload: jpeg,
                                                properties: MQTTProperties(contentType: "image/jpeg")))
        // Likewise a binary tensor request without job_id (the store must not make up an id of its own).
        await service.handleRequest(MQTTMessage(topic: topic, payload: [UInt8](repeating: 0, count: 16),
                                                properties: MQTTProperties(contentType: JobRequest.tensorContentType,
                                                                           userProperties: [MQTTUserProperty(name: "tensor_shape", value: "4")])))
        let counts = try await database.counts()
        XCTAssertEqual(counts.values.reduce(0, +), 0)
    }

    func testResultAndEventMessages() async throws {
        let running = JobResult(jobID: "job-1", model: "inception_v3", status: .running,
                                timings: JobTimings(queuedAt: 1_000, startedAt: 2_000), worker: "w1")
        await service.handleEvent(MQTTMessage(topic: Topics.event(job: "job-1"), payload: [UInt8](running.jsonPayload())))
        var job = try await database.job("job-1")
        XCTAssertEqual(job?.status, .running)
        XCTAssertEqual(job?.worker, "w1")

        let done = JobResult(jobID: "job-1", model: "inception_v3", status: .succeeded,
                             top: [ClassScore(index: 1, label: "goldfish", score: 0.5)],
                             timings: JobTimings(queuedAt: 1_000, startedAt: 2_000, finishedAt: 2_500, inferenceMs: 400),
                             worker: "w1")
        await service.handleResult(MQTTMessage(topic: Topics.result(job: "job-1"), payload: [UInt8](done.jsonPayload())))
        job = try await database.job("job-1")
        XCTAssertEqual(job?.status, .succeeded)
        XCTAssertEqual(job?.prediction, "goldfish")

        // Garbage on the result topic is skipped.
        await service.handleResult(MQTTMessage(topic: Topics.result(job: "job-1"), payload: Array("{".utf8)))
        // A late running event does not downgrade.
        await service.handleEvent(MQTTMessage(topic: Topics.event(job: "job-1"), payload: [UInt8](running.jsonPayload())))
        job = try await database.job("job-1")
        XCTAssertEqual(job, done)
    }

    func testAHandBackThatOvertakesItsRequestAppliesWhenTheRequestIsRecorded() async throws {
        let handBack = JobResult(jobID: "early-1", model: "inception_v3", status: .queued,
                                 error: "worker w2 holds 3 job(s), its prefetch bound", worker: "w2")
        await service.handleEvent(MQTTMessage(topic: Topics.event(job: "early-1"), payload: [UInt8](handBack.jsonPayload())))
        let (payload, properties) = JobRequest(jobID: "early-1", model: "inception_v3", image: Data(jpeg)).binaryMessage()
        await service.handleRequest(MQTTMessage(topic: Topics.requests(model: "inception_v3"), payload: payload, qos: 1,
                                                properties: properties))
        // Due at once (not after the 60 s lease), with the hand-back's reason kept.
        let due = try await database.overdue(now: Clock.nowMillis() + 1)
        XCTAssertEqual(due.map(\.id), ["early-1"])
        XCTAssertEqual(due.first?.lastError, "worker w2 holds 3 job(s), its prefetch bound")
        // Applied once: the same request seen again (a redelivery) is not handed back again.
        try await database.redelivered("early-1", leaseUntil: Clock.nowMillis() + 60_000)
        await service.handleRequest(MQTTMessage(topic: Topics.requests(model: "inception_v3"), payload: payload, qos: 1,
                                                properties: properties))
        let again = try await database.overdue(now: Clock.nowMillis() + 1)
        XCTAssertEqual(again.map(\.id), [])
    }

    func testQueryAnswers() async throws {
        let done = JobResult(jobID: "job-1", model: "inception_v3", status: .failed,
                             timings: JobTimings(finishedAt: 5), error: "not a JPEG")
        try await database.recordResult(done)

        let found = await service.answer(StoreQuery(jobID: "job-1").jsonPayload())
        XCTAssertEqual(try JSONCoding.decoder.decode(JobResult.self, from: Data(found)), done)
        let message = MQTTMessage(topic: "reply", payload: found)
        XCTAssertEqual(try JobQueryClient.decode(message, jobID: "job-1"), done)

        let missing = await service.answer(Array(#"{"job_id": "nope"}"#.utf8))
        XCTAssertEqual(try JSONCoding.decoder.decode(StoreErrorReply.self, from: Data(missing)),
                       StoreErrorReply(error: "job not found", jobID: "nope"))
        XCTAssertEqual(String(decoding: missing, as: UTF8.self), #"{"error":"job not found","job_id":"nope"}"#)
        XCTAssertNil(try JobQueryClient.decode(MQTTMessage(topic: "reply", payload: missing), jobID: "nope"))

        let invalid = await service.answer(Array("job-1".utf8))
        let reply = try JSONCoding.decoder.decode(StoreErrorReply.self, from: Data(invalid))
        XCTAssertNil(reply.jobID)
        XCTAssertThrowsError(try JobQueryClient.decode(MQTTMessage(topic: "reply", payload: invalid), jobID: "x")) { error in
            guard case JobQueryError.storeError = error else { return XCTFail("\(error)") }
        }
    }

    func testConfigurationDefaults() {
        let configuration = ResultStoreConfiguration()
        XCTAssertEqual(configuration.databasePath, "conveyor-jobs.sqlite")
        XCTAssertEqual(configuration.retention, .seconds(86_400))
        XCTAssertEqual(configuration.purgeInterval, .seconds(60))
        XCTAssertEqual(configuration.broker.protocolVersion, .v5)
    }
}
