import Foundation
import Jobs
import Logging
import MQTT
import TestBroker
import StoreClient
import XCTest

@testable import ResultStore

/// `ResultStoreService` and `JobQueryClient` against a real mosquitto and a
/// real SQLite file.
final class ResultStoreServiceTests: XCTestCase {
    private var directory: URL!
    private var broker: MosquittoBroker!
    private var clients: [MQTTClient] = []
    private var databasePath: String { directory.appendingPathComponent("jobs.sqlite").path }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-store-service-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        broker = try MosquittoBroker()
        try broker.start()
    }

    override func tearDown() async throws {
        for client in clients { await client.disconnect() }
        clients = []
        broker?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Helpers

    private static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46]

    private func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        return logger
    }

    private func brokerConfiguration(_ name: String) -> MQTTConfiguration {
        MQTTConfiguration(host: "127.0.0.1", port: broker.port, clientID: "\(name)-\(UUID().uuidString.prefix(8))",
                          protocolVersion: .v5)
    }

    private func storeConfiguration(retention: Duration = .seconds(3600),
                                    purgeInterval: Duration = .seconds(60)) -> ResultStoreConfiguration {
        ResultStoreConfiguration(databasePath: databasePath, retention: retention, purgeInterval: purgeInterval,
                                 broker: brokerConfiguration("store"))
    }

    /// Runs a store service in a task; cancel the task to stop it.
    private func startStore(_ configuration: ResultStoreConfiguration) throws -> Task<Void, any Error> {
        let service = try ResultStoreService(configuration: configuration, logger: logger("test.store"))
        return Task { try await service.run() }
    }

    /// A connected client for publishing, disconnected in tearDown.
    private func connectedClient(_ name: String) async throws -> MQTTClient {
        let client = MQTTClient(brokerConfiguration(name), logger: logger("test.\(name)"))
        try await client.connect()
        clients.append(client)
        return client
    }

    private func startedQueries(_ client: MQTTClient) async throws -> JobQueryClient {
        let queries = JobQueryClient(client: client, replyTopic: JobQueryClient.uniqueReplyTopic(), logger: logger("test.queries"))
        try await queries.start()
        return queries
    }

    /// Polls `probe` until it returns a value (at most `timeout`).
    private func eventually<T>(_ what: String, timeout: Duration = .seconds(15),
                               _ probe: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if let value = try await probe() { return value }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("timed out waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
        throw CancellationError()
    }

    /// Waits until the store answers queries (so it has made all its subscriptions).
    private func waitForStore(_ queries: JobQueryClient) async throws {
        _ = try await eventually("the store to answer") { () -> Bool? in
            let answer = try await queries.job("no-such-job", timeout: .milliseconds(500))
            XCTAssertNil(answer)
            return true
        }
    }

    /// Polls the store until job `id` has `status`.
    private func waitFor(_ id: String, _ status: JobStatus, _ queries: JobQueryClient) async throws -> JobResult {
        try await eventually("job \(id) to be \(status)") {
            let job = try await queries.job(id, timeout: .seconds(2))
            return job?.status == status ? job : nil
        }
    }

    private func succeeded(_ id: String, label: String = "tabby", worker: String = "w1") -> JobResult {
        JobResult(jobID: id, model: "inception_v3", version: 1, status: .succeeded,
                  top: [ClassScore(index: 281, label: label, score: 0.5), ClassScore(index: 282, label: "tiger cat", score: 0.25)],
                  timings: JobTimings(queuedAt: 1_000, startedAt: 2_000, finishedAt: Clock.nowMillis(), inferenceMs: 750),
                  worker: worker)
    }

    private func publish(_ result: JobResult, on client: MQTTClient, event: Bool = false) async throws {
        var properties = MQTTProperties()
        properties.contentType = "application/json"
        let topic = event ? Topics.event(job: result.jobID) : Topics.result(job: result.jobID)
        try await client.publish(topic, payload: [UInt8](result.jsonPayload()), qos: 1, properties: properties)
    }

    // MARK: - Tests

    func testStoreRecordsTheLifecycleAndServesQueries() async throws {
        let store = try startStore(storeConfiguration())
        let client = try await connectedClient("publisher")
        let queries = try await startedQueries(client)
        try await waitForStore(queries)

        // An unknown job is nil, not an error.
        let unknown = try await queries.job("never-submitted")
        XCTAssertNil(unknown)

        // Ledger: a JSON request and a binary one.
        let jsonRequest = JobRequest(jobID: "job-json", model: "inception_v3", version: 1, topK: 2,
                                     submittedAt: 1_000, image: Data(Self.jpeg))
        let json = jsonRequest.jsonMessage()
        try await client.publish(Topics.requests(model: "inception_v3"), payload: json.payload, properties: json.properties)
        let queued = try await waitFor("job-json", .queued, queries)
        XCTAssertEqual(queued.model, "inception_v3")
        XCTAssertEqual(queued.timings.queuedAt, 1_000)

        let binaryRequest = JobRequest(jobID: "job-bin", model: "inception_v3", version: 1, topK: 5,
                                       submittedAt: 1_500, image: Data(Self.jpeg))
        let binary = binaryRequest.binaryMessage()
        try await client.publish(Topics.requests(model: "inception_v3"), payload: binary.payload, properties: binary.properties)
        let binaryQueued = try await waitFor("job-bin", .queued, queries)
        XCTAssertEqual(binaryQueued.timings.queuedAt, 1_500)

        // Garbage on the ledger is skipped and the store carries on.
        try await client.publish(Topics.requests(model: "inception_v3"), payload: Array("not a request".utf8))

        // A worker takes job-json, then finishes it.
        try await publish(JobResult(jobID: "job-json", model: "inception_v3", version: 1, status: .running,
                                    timings: JobTimings(queuedAt: 1_000, startedAt: 2_000), worker: "w1"),
                          on: client, event: true)
        let running = try await waitFor("job-json", .running, queries)
        XCTAssertEqual(running.worker, "w1")
        XCTAssertEqual(running.timings.startedAt, 2_000)

        let result = succeeded("job-json")
        try await publish(result, on: client)
        let done = try await waitFor("job-json", .succeeded, queries)
        XCTAssertEqual(done, result)
        XCTAssertEqual(done.prediction, "tabby")

        // A second, different terminal result and a late running event are
        // ignored; job-bin's result, published after them on the same
        // connection, shows they were processed.
        try await publish(JobResult(jobID: "job-json", model: "inception_v3", status: .failed, error: "late duplicate",
                                    worker: "w2"), on: client)
        try await publish(JobResult(jobID: "job-json", model: "inception_v3", status: .running,
                                    timings: JobTimings(startedAt: 9_000), worker: "w3"), on: client, event: true)
        try await publish(succeeded("job-bin", label: "lynx"), on: client)
        try await publish(JobResult(jobID: "job-marker", model: "inception_v3", status: .running,
                                    timings: JobTimings(startedAt: 9_000), worker: "w3"), on: client, event: true)
        _ = try await waitFor("job-bin", .succeeded, queries)
        _ = try await waitFor("job-marker", .running, queries)
        let stillFirst = try await queries.job("job-json")
        XCTAssertEqual(stillFirst, result)

        // Many concurrent queries through one client, each answered correctly.
        let ids = (0..<60).map { ["job-json", "job-bin", "unknown-\($0)"][$0 % 3] }
        let answers = try await withThrowingTaskGroup(of: (Int, JobResult?).self) { group in
            for (i, id) in ids.enumerated() {
                group.addTask { (i, try await queries.job(id, timeout: .seconds(10))) }
            }
            var answers = [JobResult?](repeating: nil, count: ids.count)
            for try await (i, answer) in group { answers[i] = answer }
            return answers
        }
        for (id, answer) in zip(ids, answers) {
            if id.hasPrefix("unknown") {
                XCTAssertNil(answer, id)
            } else {
                XCTAssertEqual(answer?.jobID, id)
                XCTAssertEqual(answer?.status, .succeeded)
            }
        }

        store.cancel()
        try await store.value

        // The database file holds what the service recorded.
        let database = try JobDatabase(path: databasePath)
        let counts = try await database.counts()
        XCTAssertEqual(counts[.succeeded], 2)
        XCTAssertEqual(counts[.running], 1)
    }

    func testRedeliveryRepublishesTheMessageAsItCame() async throws {
        var configuration = storeConfiguration()
        configuration.lease = .milliseconds(600)
        configuration.redeliveryInterval = .milliseconds(100)
        let store = try startStore(configuration)
        defer { store.cancel() }
        let client = try await connectedClient("publisher")
        try await waitForStore(try await startedQueries(client))
        // A worker that takes requests and never answers: the ledger publishes them again.
        let worker = try await connectedClient("worker")
        let serviceTopic = Topics.requests(model: "inception_v3", version: 2)
        let deviceTopic = Topics.deviceRequests(device: "cam-7", model: "inception_v3")
        var seen = try await worker.subscribe(Topics.allRequests, qos: 1).makeAsyncIterator()
        var seenByDevice = try await worker.subscribe(Topics.allDeviceRequests, qos: 1).makeAsyncIterator()

        let image = Self.jpeg + [UInt8](repeating: 0x42, count: 2_000)
        var properties = MQTTProperties(
            responseTopic: "app/replies/42", correlationData: [0, 1, 2, 250], contentType: "image/jpeg",
            userProperties: [MQTTUserProperty(name: "job_id", value: "as-it-came"),
                             MQTTUserProperty(name: "model", value: "inception_v3"),
                             MQTTUserProperty(name: "top_k", value: "3"),
                             MQTTUserProperty(name: "line", value: "press 4"),
                             MQTTUserProperty(name: "line", value: "station 2")],
            messageExpiryInterval: 3600)
        properties.userProperties.append(MQTTUserProperty(name: LedgerReceipt.userProperty,
                                                          value: Topics.storeReply(client: "someone")))
        try await client.publish(serviceTopic, payload: image, qos: 1, properties: properties)
        let deviceProperties = MQTTProperties(correlationData: Array("frame-9".utf8), contentType: "image/jpeg")
        try await client.publish(deviceTopic, payload: image, qos: 1, properties: deviceProperties)

        let first = await seen.next()
        let again = await seen.next()
        XCTAssertEqual(first?.topic, serviceTopic)
        XCTAssertEqual(again?.topic, serviceTopic, "published again on the topic it came on")
        XCTAssertEqual(again?.payload, image, "the same bytes, not re-encoded")
        var expected = properties
        expected.userProperties.removeLast()  // the receipt was asked for once
        XCTAssertEqual(again?.properties.userProperties, expected.userProperties)
        XCTAssertEqual(again?.properties.responseTopic, "app/replies/42")
        XCTAssertEqual(again?.properties.correlationData, [0, 1, 2, 250])
        XCTAssertEqual(again?.properties.contentType, "image/jpeg")
        let expiry = try XCTUnwrap(again?.properties.messageExpiryInterval)
        XCTAssertTrue((3590...3600).contains(expiry), "what is left of the message expiry, not a new one: \(expiry)")

        _ = await seenByDevice.next()
        let deviceAgain = await seenByDevice.next()
        XCTAssertEqual(deviceAgain?.topic, deviceTopic, "a device's request goes back to its own topic")
        XCTAssertEqual(deviceAgain?.payload, image)
        XCTAssertEqual(deviceAgain?.properties.correlationData, Array("frame-9".utf8))
        XCTAssertEqual(deviceAgain?.properties.contentType, "image/jpeg")
    }

    func testARequestWhoseMessageExpiryPassedEndsExpiredInsteadOfBeingPublishedAgain() async throws {
        var configuration = storeConfiguration()
        configuration.lease = .milliseconds(300)
        configuration.redeliveryInterval = .milliseconds(100)
        let store = try startStore(configuration)
        defer { store.cancel() }
        let client = try await connectedClient("publisher")
        let queries = try await startedQueries(client)
        try await waitForStore(queries)
        var (payload, properties) = JobRequest(jobID: "short-lived", model: "inception_v3", image: Data(Self.jpeg)).binaryMessage()
        properties.messageExpiryInterval = 1
        try await client.publish(Topics.requests(model: "inception_v3"), payload: payload, qos: 1, properties: properties)
        let job = try await waitFor("short-lived", .expired, queries)
        XCTAssertTrue(job.error?.contains("message expiry") == true, job.error ?? "no error")
    }

    func testRestartedStoreServesFinishedJobsFromTheSameFile() async throws {
        let client = try await connectedClient("publisher")
        let queries = try await startedQueries(client)

        let first = try startStore(storeConfiguration())
        try await waitForStore(queries)
        let result = succeeded("job-r")
        try await publish(result, on: client)
        let served = try await waitFor("job-r", .succeeded, queries)
        XCTAssertEqual(served, result)
        first.cancel()
        try await first.value

        // Nobody answers while the store is down.
        do {
            _ = try await queries.job("job-r", timeout: .milliseconds(300))
            XCTFail("a stopped store answered")
        } catch let error as JobQueryError {
            guard case .timeout(let id, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(id, "job-r")
        }

        let second = try startStore(storeConfiguration())
        let again = try await eventually("the restarted store to serve job-r") {
            try await queries.job("job-r", timeout: .milliseconds(500))
        }
        XCTAssertEqual(again, result)
        // First terminal still wins after the restart.
        try await publish(succeeded("job-r", label: "lynx", worker: "w9"), on: client)
        try await publish(succeeded("job-after"), on: client)
        _ = try await waitFor("job-after", .succeeded, queries)
        let unchanged = try await queries.job("job-r")
        XCTAssertEqual(unchanged, result)
        second.cancel()
        try await second.value
    }

    func testStoreCarriesOnAfterABrokerRestart() async throws {
        let store = try startStore(storeConfiguration())
        let client = try await connectedClient("publisher")
        let queries = try await startedQueries(client)
        try await waitForStore(queries)
        let before = succeeded("job-before")
        try await publish(before, on: client)
        _ = try await waitFor("job-before", .succeeded, queries)

        try broker.restart()
        // Both clients reconnect and subscribe again by themselves.
        let again = try await eventually("the store to answer after the restart") {
            try await queries.job("job-before", timeout: .milliseconds(500))
        }
        XCTAssertEqual(again, before)
        let after = succeeded("job-after")
        try await publish(after, on: client)
        let served = try await waitFor("job-after", .succeeded, queries)
        XCTAssertEqual(served, after)
        store.cancel()
        try await store.value
    }

    func testRawReplyCarriesCorrelationDataAndContentType() async throws {
        let store = try startStore(storeConfiguration())
        let client = try await connectedClient("raw")
        try await waitForStore(try await startedQueries(client))

        let replyTopic = "test/replies/\(UUID().uuidString)"
        let replies = try await client.subscribe(replyTopic, qos: 1)
        let correlation: [UInt8] = [0, 1, 2, 255, 42]
        try await client.publish(Topics.storeQuery, payload: Array(#"{"job_id":"missing"}"#.utf8), qos: 1,
                                 properties: MQTTProperties(responseTopic: replyTopic, correlationData: correlation,
                                                            contentType: "application/json"))
        var iterator = replies.makeAsyncIterator()
        let reply = await iterator.next()
        XCTAssertEqual(reply?.properties.correlationData, correlation)
        XCTAssertEqual(reply?.properties.contentType, "application/json")
        XCTAssertEqual(reply.map { String(decoding: $0.payload, as: UTF8.self) },
                       #"{"error":"job not found","job_id":"missing"}"#)
        await replies.cancel()
        store.cancel()
        try await store.value
    }

    func testRetentionPurgeRunsPeriodically() async throws {
        let store = try startStore(storeConfiguration(retention: .seconds(60), purgeInterval: .milliseconds(100)))
        let client = try await connectedClient("publisher")
        let queries = try await startedQueries(client)
        try await waitForStore(queries)

        var old = succeeded("job-old")
        old.timings.finishedAt = Clock.nowMillis() - 120_000
        try await publish(old, on: client)
        let fresh = succeeded("job-fresh")
        try await publish(fresh, on: client)
        let request = JobRequest(jobID: "job-queued", model: "inception_v3", submittedAt: Clock.nowMillis() - 120_000,
                                 image: Data(Self.jpeg))
        let json = request.jsonMessage()
        try await client.publish(Topics.requests(model: "inception_v3"), payload: json.payload, properties: json.properties)

        _ = try await waitFor("job-fresh", .succeeded, queries)
        _ = try await waitFor("job-queued", .queued, queries)
        // job-old was recorded (results are processed in order) and is purged within a purge interval or two.
        try await Task.sleep(for: .milliseconds(300))
        let purged = try await queries.job("job-old")
        XCTAssertNil(purged)
        let kept = try await queries.job("job-fresh")
        XCTAssertEqual(kept, fresh)
        store.cancel()
        try await store.value
    }

    func testQueryWithoutStoreTimesOut() async throws {
        let client = try await connectedClient("lonely")
        let queries = JobQueryClient(client: client, replyTopic: JobQueryClient.uniqueReplyTopic())
        do {
            _ = try await queries.job("job-1")
            XCTFail("a query before start() succeeded")
        } catch let error as JobQueryError {
            XCTAssertEqual(error, .notStarted)
        }
        try await queries.start()
        try await queries.start()  // once is enough; again does nothing
        let started = ContinuousClock.now
        do {
            _ = try await queries.job("job-1", timeout: .milliseconds(300))
            XCTFail("nobody should have answered")
        } catch let error as JobQueryError {
            XCTAssertEqual(error, .timeout(jobID: "job-1", after: .milliseconds(300)))
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(3))

        queries.stop()
        do {
            _ = try await queries.job("job-1", timeout: .milliseconds(300))
            XCTFail("a stopped client queried")
        } catch let error as JobQueryError {
            XCTAssertEqual(error, .connectionClosed)
        }
    }

    func testCancellingAQueryEndsItPromptly() async throws {
        let client = try await connectedClient("canceller")
        let queries = try await startedQueries(client)
        let query = Task { try await queries.job("job-1", timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        query.cancel()
        do {
            _ = try await query.value
            XCTFail("a cancelled query returned")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }

    func testQueriesFailWhenTheClientDisconnects() async throws {
        let client = MQTTClient(brokerConfiguration("leaver"), logger: logger("test.leaver"))
        try await client.connect()
        let queries = try await startedQueries(client)
        let query = Task { try await queries.job("job-1", timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        await client.disconnect()
        do {
            _ = try await query.value
            XCTFail("a query answered after disconnect")
        } catch let error as JobQueryError {
            XCTAssertEqual(error, .connectionClosed)
        }
        do {
            _ = try await queries.job("job-1", timeout: .milliseconds(200))
            XCTFail("a query succeeded after disconnect")
        } catch let error as JobQueryError {
            XCTAssertEqual(error, .connectionClosed)
        }

        // Connected again and restarted, it works again (here: nobody answers).
        try await client.connect()
        clients.append(client)
        try await queries.start()
        let store = try startStore(storeConfiguration())
        let answer = try await eventually("the store to answer the restarted client") { () -> Bool? in
            try await queries.job("job-1", timeout: .milliseconds(500)) == nil
        }
        XCTAssertTrue(answer)
        store.cancel()
        try await store.value
    }
}
