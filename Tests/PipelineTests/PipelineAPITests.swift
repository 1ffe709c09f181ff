import Foundation
import Jobs
import MQTT
import XCTest

/// The real `conveyor` binary as separate processes — `conveyor store`, one `conveyor worker`
/// and two `conveyor ingress`es (the second with `--max-body-bytes 100000`) — against a
/// private mosquitto, driven over HTTP and MQTT. One set of processes serves every test of
/// this class (none of them stops or breaks a service).
final class PipelineAPITests: XCTestCase {
    static let worker = "worker-api"

    static let shared = SharedPipeline {
        let pipeline = try Pipeline(name: "api")
        try await pipeline.start(
            workers: [PipelineAPITests.worker],
            ingresses: [
                .init(name: "ingress", extraArguments: ["--sample-image", Paths.sampleImage]),
                .init(name: "ingress-small", extraArguments: ["--max-body-bytes", "100000"]),
            ])
        return pipeline
    }

    override class func tearDown() {
        shared.shutDown()
        super.tearDown()
    }

    override func tearDown() async throws {
        Self.shared.record(testSucceeded: (testRun?.totalFailureCount ?? 1) == 0)
        try await super.tearDown()
    }

    private func pipeline() async throws -> Pipeline {
        try await Self.shared.get()
    }

    // MARK: - Informational routes

    func testHealthMetadataAndLabels() async throws {
        let pipeline = try await pipeline()
        let http = try pipeline.http

        let health = try await http.get("/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.object?["health"] as? String, "ok", health.text)

        let metadata = try await http.get("/metadata")
        XCTAssertEqual(metadata.status, 200)
        let object = try XCTUnwrap(metadata.object, metadata.text)
        let spec = try XCTUnwrap(object["model_spec"] as? [String: Any], "no model_spec: \(metadata.text)")
        XCTAssertEqual(spec["name"] as? String, "inception_v3")
        XCTAssertEqual(spec["version"] as? String, "0", "a single model file is version 0, as the book exports it")
        let outer = try XCTUnwrap(object["metadata"] as? [String: Any], "no metadata: \(metadata.text)")
        let signatureDef = try XCTUnwrap(outer["signature_def"] as? [String: Any], "no metadata.signature_def")
        let signatures = try XCTUnwrap(signatureDef["signature_def"] as? [String: Any], "no metadata.signature_def.signature_def")
        let serving = try XCTUnwrap(signatures["serving_default"] as? [String: Any], "no serving_default signature")
        // The book's exported signature: image (DT_STRING [-1]) → output_0 (DT_STRING [-1]).
        let input = try XCTUnwrap((serving["inputs"] as? [String: Any])?["image"] as? [String: Any], "\(serving)")
        XCTAssertEqual(input["dtype"] as? String, "DT_STRING")
        let output = try XCTUnwrap((serving["outputs"] as? [String: Any])?["output_0"] as? [String: Any], "\(serving)")
        XCTAssertEqual(output["dtype"] as? String, "DT_STRING")
        XCTAssertEqual((serving["outputs"] as? [String: Any])?.count, 1)
        XCTAssertEqual(serving["method_name"] as? String, "tensorflow/serving/predict")

        let label = try await http.get("/label")
        XCTAssertEqual(label.status, 200)
        let names = try XCTUnwrap(label.json as? [String], "GET /label is not a JSON array of strings: \(label.text.prefix(200))")
        XCTAssertEqual(names.count, 1000)
        if names.count > 892 { XCTAssertEqual(names[892], "wall clock") }
    }

    // MARK: - Classification

    /// Every shared JPEG goes through POST /predict → worker → store → GET /job and comes out
    /// with the reference top-5; the BMP is refused at the door.
    func testEverySharedJPEGMatchesTheReferenceTop5() async throws {
        let pipeline = try await pipeline()
        let reference = try TestImages.reference()
        let byFile = Dictionary(reference.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
        let files = try TestImages.sharedJPEGs()
        XCTAssertGreaterThanOrEqual(files.count, 10, "expected the 7 photos and 3 coral JPEGs, found \(files)")

        // Submit them all, then poll each.
        var jobs: [(file: String, id: String)] = []
        for file in files {
            jobs.append((file, try await pipeline.submit(try TestImages.contents(file))))
        }
        for (file, id) in jobs {
            let job = try await pipeline.waitForTerminal(id, timeout: 200)
            XCTAssertEqual(job.status, "succeeded", "\(file): \(job)\n\(pipeline.diagnostics())")
            guard let expected = byFile[file] else {
                XCTFail("\(file) is not in the reference manifest")
                continue
            }
            XCTAssertEqual(job.top.map(\.index), expected.top5, "\(file): top-5 differs from the reference")
            if !expected.top5Labels.isEmpty {
                XCTAssertEqual(job.top.map(\.label), expected.top5Labels, "\(file): top-5 labels")
            }
            XCTAssertEqual(job.prediction, job.top.first?.label, "\(file): prediction is the top-1 label")
            XCTAssertEqual(job.model, "inception_v3")
        }

        // grace_hopper.bmp is a BMP: refused before it becomes a job.
        let bmp = try TestImages.contents("coral/grace_hopper.bmp")
        let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(bmp))
        XCTAssertEqual(reply.status, 400, reply.text)
        XCTAssertTrue(reply.errorMessage?.contains("BMP") == true, "error should name the BMP format: \(reply.text)")
    }

    func testPredictTestClassifiesTheSampleImage() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.http.get("/predict/test")
        XCTAssertEqual(reply.status, 202, reply.text)
        let id = try XCTUnwrap(reply.object?["job_id"] as? String, reply.text)
        let job = try await pipeline.waitForTerminal(id)
        XCTAssertEqual(job.status, "succeeded", "\(job)")
        XCTAssertEqual(job.prediction, "wall clock")
        XCTAssertEqual(job.top.first?.index, 892)
        XCTAssertEqual(job.top.first?.label, "wall clock")
    }

    // MARK: - Long polling

    /// A long poll answers as soon as the job ends, not at the end of the wait: a job queued
    /// behind another one is polled with ?wait=30 before it finishes.
    func testLongPollReturnsAsSoonAsTheJobEnds() async throws {
        let pipeline = try await pipeline()
        // A job in front, so the polled one is still queued when the poll arrives.
        let blocker = try await pipeline.submit(try TestImages.contents("0004.jpg"))
        let id = try await pipeline.submit(try TestImages.contents("coral/cat_720p.jpg"))

        let reply = try await pipeline.job(id, wait: 30)
        XCTAssertEqual(reply.status, 200, reply.text)
        let job = try JobView(id: id, reply: reply)
        XCTAssertEqual(job.status, "succeeded", "\(job)")
        XCTAssertLessThan(reply.elapsed, 20, "the long poll took \(reply.elapsed) s: it should end with the job, well before 30 s")
        let finishedAt = try XCTUnwrap(job.timings["finished_at"], "no finished_at in \(job.raw)")
        XCTAssertLessThan(Double(reply.sentAtMillis), finishedAt,
                          "the job had already finished when the poll was sent; the test did not exercise the wait")
        let lag = Double(reply.receivedAtMillis) - finishedAt
        XCTAssertLessThan(lag, 2000, "the answer came \(Int(lag)) ms after the job finished")
        _ = try await pipeline.waitForTerminal(blocker)
    }

    /// A job that fails within milliseconds (a truncated JPEG) ends while the ingress is still
    /// asking the store about it; the long poll must still answer at once, not after the wait.
    func testLongPollReturnsAsSoonAsAFastFailingJobEnds() async throws {
        let pipeline = try await pipeline()
        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let truncated = cat.prefix(cat.count / 2)
        for attempt in 1...10 {
            let id = try await pipeline.submit(truncated)
            let reply = try await pipeline.job(id, wait: 30)
            XCTAssertEqual(reply.status, 200, reply.text)
            let job = try JobView(id: id, reply: reply)
            XCTAssertEqual(job.status, "failed", "\(job)")
            let duration = (job.timings["finished_at"] ?? 0) - (job.timings["queued_at"] ?? 0)
            if reply.elapsed > 10 {
                XCTFail("attempt \(attempt): GET /job/\(id)?wait=30 answered after \(String(format: "%.1f", reply.elapsed)) s "
                        + "for a job that ended \(Int(duration)) ms after it was queued: the ingress missed its result")
                break
            }
        }
    }

    /// `?wait=1` on a well-formed id nobody knows: 404 after about a second.
    func testLongPollOnAnUnknownJobAnswers404AfterTheWait() async throws {
        let pipeline = try await pipeline()
        let id = JobID.make()
        let reply = try await pipeline.job(id, wait: 1)
        XCTAssertEqual(reply.status, 404, reply.text)
        XCTAssertNotNil(reply.errorMessage, "404 body should be {\"error\": ...}: \(reply.text)")
        XCTAssertGreaterThanOrEqual(reply.elapsed, 0.9, "answered before the wait was over")
        XCTAssertLessThan(reply.elapsed, 6, "answered \(reply.elapsed) s after a 1 s wait")
    }

    // MARK: - MQTT

    /// A client on `conveyor/v1/results/+` gets the same outcome as GET /job shows.
    func testResultOnTheMQTTTopicMatchesGETJob() async throws {
        let pipeline = try await pipeline()
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let id = try await pipeline.submit(try TestImages.contents("coral/hot_dog.jpg"))
        let published = try await listener.first(timeout: 180) { $0.jobID == id && $0.status.isTerminal }
        let result = try XCTUnwrap(published, "no result for \(id) on conveyor/v1/results/+\n\(pipeline.diagnostics())")
        let received = try XCTUnwrap(listener.all.first { $0.result?.jobID == id && $0.result?.status.isTerminal == true })
        XCTAssertEqual(received.topic, "conveyor/v1/results/\(id)")

        let job = try await pipeline.waitForTerminal(id)
        XCTAssertEqual(result.status.rawValue, job.status)
        XCTAssertEqual(result.status, .succeeded)
        XCTAssertEqual(result.top.map(\.index), job.top.map(\.index))
        XCTAssertEqual(result.top.map(\.label), job.top.map(\.label))
        for (mqtt, http) in zip(result.top, job.top) {
            XCTAssertEqual(Double(mqtt.score), http.score, accuracy: 1e-6, "score of class \(mqtt.index)")
        }
        XCTAssertEqual(result.prediction, job.prediction)
        XCTAssertEqual(result.worker, Self.worker)
        XCTAssertEqual(result.timings.finishedAt.map { Double($0) }, job.timings["finished_at"])
        XCTAssertEqual(result.timings.startedAt.map { Double($0) }, job.timings["started_at"])
        XCTAssertEqual(result.timings.queuedAt.map { Double($0) }, job.timings["queued_at"])
    }

    /// Garbage on the request topic: a `failed` result with the reason on the results topic,
    /// and the worker keeps serving.
    func testGarbageMQTTRequestsGetFailedResultsAndTheWorkerKeepsRunning() async throws {
        let pipeline = try await pipeline()
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }
        let publisher = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: pipeline.broker.port,
                                                     clientID: "garbage-\(UUID().uuidString.prefix(6))"))
        try await publisher.connect()
        let topic = Topics.requests(model: "inception_v3")

        // Random bytes (not starting like a JPEG, nor like JSON).
        var generator = SystemRandomNumberGenerator()
        let random: [UInt8] = [0x00] + (0..<511).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try await publisher.publish(topic, payload: random, qos: 1)
        // JSON without an image.
        try await publisher.publish(topic, payload: Array(#"{"job_id":"x1","model":"inception_v3"}"#.utf8), qos: 1)
        await publisher.disconnect()

        let x1 = try await listener.first(timeout: 60) { $0.jobID == "x1" }
        let x1Result = try XCTUnwrap(x1, "no result for x1 on the results topic\n\(pipeline.diagnostics())")
        XCTAssertEqual(x1Result.status, .failed)
        XCTAssertTrue(x1Result.error?.contains("image_b64") == true, "x1's reason should name the missing image: \(x1Result.error ?? "nil")")
        XCTAssertEqual(listener.all.first { $0.result?.jobID == "x1" }?.topic, "conveyor/v1/results/x1")

        let garbage = try await listener.first(timeout: 60) {
            $0.status == .failed && $0.jobID != "x1" && ($0.error ?? "").hasPrefix("bad request")
        }
        let garbageResult = try XCTUnwrap(garbage, "no failed result for the random payload\n\(pipeline.diagnostics())")
        XCTAssertFalse(garbageResult.error?.isEmpty ?? true)

        // The store recorded x1's failure; GET /job shows it.
        let x1Job = try await pipeline.waitForTerminal("x1", timeout: 30)
        XCTAssertEqual(x1Job.status, "failed")
        XCTAssertNotNil(x1Job.error)

        try await assertStillServing(pipeline)
    }

    // MARK: - Bad HTTP input

    func testInvalidJSONIsRejectedWith400() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.http.post("/predict", body: Data("{\"image_data\": ".utf8))
        assertError(reply, 400)
        try await assertStillAlive(pipeline)
    }

    func testJSONWithoutImageDataIsRejectedWith400() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.http.post("/predict", body: Data(#"{"image": "aGVsbG8="}"#.utf8))
        assertError(reply, 400, mentioning: "image_data")
        try await assertStillAlive(pipeline)
    }

    func testBadBase64IsRejectedWith400() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.http.post("/predict", body: Data(#"{"image_data": "@@@@ not base64 !!!"}"#.utf8))
        assertError(reply, 400, mentioning: "base64")
        try await assertStillAlive(pipeline)
    }

    func testNonImageBytesAreRejectedWith400UnsupportedFormat() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(Data("hello".utf8)))
        assertError(reply, 400, mentioning: "unsupported")
        try await assertStillAlive(pipeline)
    }

    /// The header is fine, so the job is accepted; decoding fails in the worker.
    func testTruncatedJPEGIsAcceptedThenFailsWithTheJPEGError() async throws {
        let pipeline = try await pipeline()
        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let id = try await pipeline.submit(cat.prefix(cat.count / 2))
        // Plain polling: a long poll on a job this quick can miss its end (see the test below).
        let polled = try await pipeline.pollUntilTerminal(id)
        let job = try XCTUnwrap(polled, "job \(id) never became known")
        XCTAssertEqual(job.status, "failed", "\(job)")
        let error = job.error ?? ""
        XCTAssertTrue(error.contains("JPEG"), "the reason should name the JPEG problem: \(error)")
        XCTAssertEqual(job.prediction, "")
        XCTAssertTrue(job.top.isEmpty)
        try await assertStillServing(pipeline)
    }

    /// A header claiming 60000×60000 pixels (3.6 G > 40 M) is refused before any decoding.
    func testJPEGHeaderClaimingTooManyPixelsIsRejectedWith413() async throws {
        let pipeline = try await pipeline()
        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let huge = try TestImages.jpeg(cat, claimingWidth: 60000, height: 60000)
        let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(huge))
        assertError(reply, 413, mentioning: "pixels")
        try await assertStillAlive(pipeline)
    }

    func testBodyOverTheLimitIsRejectedWith413() async throws {
        let pipeline = try await pipeline()
        let small = try XCTUnwrap(pipeline.ingresses.first { $0.name == "ingress-small" })
        let body = Data(#"{"image_data": ""#.utf8) + Data(repeating: UInt8(ascii: "A"), count: 200_000) + Data(#""}"#.utf8)
        let reply = try await small.http.post("/predict", body: body)
        assertError(reply, 413)
        let health = try await small.http.get("/health")
        XCTAssertEqual(health.status, 200, "ingress-small after the 413")
        try await assertStillAlive(pipeline)
    }

    func testUnknownJobIs404() async throws {
        let pipeline = try await pipeline()
        let reply = try await pipeline.job(JobID.make())
        assertError(reply, 404)
        XCTAssertLessThan(reply.elapsed, 5, "no wait asked, yet it took \(reply.elapsed) s")
        let invalid = try await pipeline.http.get("/job/not.a.valid%20id")
        assertError(invalid, 404)
        try await assertStillAlive(pipeline)
    }

    // MARK: - Helpers

    private func assertError(_ reply: HTTPReply, _ status: Int, mentioning word: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.status, status, "body: \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertTrue(reply.header("Content-Type")?.contains("application/json") == true,
                      "content type \(reply.header("Content-Type") ?? "none")", file: file, line: line)
        guard let message = reply.errorMessage else {
            XCTFail("body is not {\"error\": ...}: \(reply.text.prefix(300))", file: file, line: line)
            return
        }
        if let word {
            XCTAssertTrue(message.lowercased().contains(word.lowercased()), "\"\(message)\" should mention \(word)", file: file, line: line)
        }
    }

    /// Every process still runs and the ingress still answers.
    private func assertStillAlive(_ pipeline: Pipeline, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertEqual(pipeline.stoppedServices, [], "services stopped\n\(pipeline.diagnostics())", file: file, line: line)
        let health = try await pipeline.http.get("/health")
        XCTAssertEqual(health.status, 200, file: file, line: line)
    }

    /// Still alive, and a normal job still succeeds.
    private func assertStillServing(_ pipeline: Pipeline, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await assertStillAlive(pipeline, file: file, line: line)
        let id = try await pipeline.submit(try TestImages.contents("coral/cat_720p.jpg"))
        let job = try await pipeline.waitForTerminal(id)
        XCTAssertEqual(job.status, "succeeded", "a normal job after the bad one: \(job)\n\(pipeline.diagnostics())", file: file, line: line)
    }
}
