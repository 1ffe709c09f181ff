@testable import Ingress
import Foundation
import Jobs
import Hummingbird
import TFServing
import XCTest

/// The console's feed: what one flush sends, how changes coalesce, the summary's figures.
final class ConsoleFeedTests: XCTestCase {
    private struct StreamEnded: Error {}

    private func result(_ id: String, _ status: JobStatus, queuedAt: Int64 = 1_000, finishedAt: Int64? = nil) -> JobResult {
        JobResult(jobID: id, model: "m", status: status, timings: JobTimings(queuedAt: queuedAt, finishedAt: finishedAt))
    }

    /// The SSE messages in `buffer`: (event name, JSON object) pairs.
    private func messages(_ buffer: ByteBuffer) -> [(String, [String: Any])] {
        let text = String(buffer: buffer)
        return text.components(separatedBy: "\n\n").compactMap { block in
            var name = ""
            var data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            guard !name.isEmpty, let json = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else {
                return nil
            }
            return (name, json)
        }
    }

    /// The next buffer of the stream, or nil once it ended.
    private func next(_ iterator: inout ConsoleFeed.Stream.AsyncIterator) async -> ByteBuffer? {
        await iterator.next()
    }

    /// The next buffer of the stream; fails if it ended.
    private func take(_ iterator: inout ConsoleFeed.Stream.AsyncIterator) async throws -> ByteBuffer {
        guard let buffer = await iterator.next() else { throw StreamEnded() }
        return buffer
    }

    private func statuses(_ message: (String, [String: Any])) -> [String: String] {
        var out: [String: String] = [:]
        for job in message.1["jobs"] as? [[String: Any]] ?? [] {
            if let id = job["job_id"] as? String { out[id] = job["status"] as? String }
        }
        return out
    }

    func testAFlushSendsEachJobsLatestStateOnce() async throws {
        let feed = ConsoleFeed(catalog: ModelCatalog())
        let stream = try XCTUnwrap(feed.subscribe()).stream
        var iterator = stream.makeAsyncIterator()
        let hello = try await take(&iterator)
        XCTAssertEqual(String(buffer: hello), "retry: 2000\n\n")

        feed.jobChanged(result("a", .queued))
        feed.jobChanged(result("a", .running))
        feed.jobChanged(result("b", .queued))
        feed.jobChanged(result("b", .succeeded, finishedAt: 1_300))
        feed.jobChanged(result("b", .failed))      // a second ending: the first wins
        feed.jobChanged(result("c", .running))
        feed.jobChanged(result("c", .queued))      // a receipt after the running event
        feed.flush(summary: false)
        let first = messages(try await take(&iterator))
        XCTAssertEqual(first.map(\.0), ["jobs"])
        XCTAssertEqual(statuses(first[0]), ["a": "running", "b": "succeeded", "c": "running"])
        XCTAssertEqual(first[0].1["dropped"] as? Int, 0)

        // A running event after the job ended (it was cancelled as a worker took it) is not a change.
        feed.jobChanged(result("b", .running))
        feed.jobChanged(result("a", .cancelled))
        feed.jobChanged(result("a", .running))
        feed.flush(summary: false)
        let second = messages(try await take(&iterator))
        XCTAssertEqual(statuses(second[0]), ["a": "cancelled"])
    }

    func testTooManyChangesSendTheNewestAndCountTheRest() async throws {
        let feed = ConsoleFeed(catalog: ModelCatalog())
        let stream = try XCTUnwrap(feed.subscribe()).stream
        var iterator = stream.makeAsyncIterator()
        _ = await next(&iterator)
        let count = ConsoleFeed.maxJobsPerEvent + 25
        for i in 0..<count { feed.jobChanged(result("j\(i)", .queued)) }
        feed.flush(summary: false)
        let buffer = try await take(&iterator)
        let message = try XCTUnwrap(messages(buffer).first)
        let jobs = try XCTUnwrap(message.1["jobs"] as? [[String: Any]])
        XCTAssertEqual(jobs.count, ConsoleFeed.maxJobsPerEvent)
        XCTAssertEqual(jobs.last?["job_id"] as? String, "j\(count - 1)")
        XCTAssertEqual(message.1["dropped"] as? Int, 25)
    }

    func testSummaryCountsFinishedJobsAndShowsWorkersAndModels() async throws {
        let catalog = ModelCatalog()
        catalog.update(ServableAnnouncement(worker: "w1", models: [
            .init(name: "m", versions: [.init(version: 3, state: .available)]),
        ]))
        let feed = ConsoleFeed(catalog: catalog)
        feed.ledgerStats(LedgerStats(queued: 4, running: 1, at: 0))
        feed.heartbeat(WorkerHeartbeat(worker: "w1", model: "m", queued: ["x", "y"], running: [], at: 0))
        for (i, latency) in [100, 200, 300, 400].enumerated() {
            feed.jobChanged(result("done\(i)", .succeeded, queuedAt: 1_000, finishedAt: 1_000 + Int64(latency)))
        }
        feed.jobChanged(result("gone", .cancelled, queuedAt: 1_000, finishedAt: 9_000))  // not a latency
        let stream = try XCTUnwrap(feed.subscribe()).stream
        var iterator = stream.makeAsyncIterator()
        _ = await next(&iterator)
        feed.flush(summary: true)
        let sent = messages(try await take(&iterator))
        XCTAssertEqual(sent.map(\.0), ["jobs", "summary"], "one write carries both")
        let summary = sent[1].1
        XCTAssertEqual(summary["queued"] as? Int, 4)
        XCTAssertEqual(summary["running"] as? Int, 1)
        XCTAssertEqual(summary["jobs_per_second"] as? Double, 0.4)  // 4 ended jobs in the 10 s window
        let latency = try XCTUnwrap(summary["latency_ms"] as? [String: Any])
        XCTAssertEqual(latency["p50"] as? Double, 200)
        XCTAssertEqual(latency["p99"] as? Double, 400)
        let workers = try XCTUnwrap(summary["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.first?["worker"] as? String, "w1")
        XCTAssertEqual(workers.first?["queued"] as? Int, 2)
        let models = try XCTUnwrap(summary["models"] as? [[String: Any]])
        XCTAssertEqual(models.first?["name"] as? String, "m")
        XCTAssertEqual((models.first?["versions"] as? [[String: Any]])?.first?["state"] as? String, "AVAILABLE")

        // A client that connects later starts with the latest summary.
        let late = try XCTUnwrap(feed.subscribe()).stream
        var lateIterator = late.makeAsyncIterator()
        _ = await next(&lateIterator)
        let replay = messages(try await take(&lateIterator))
        XCTAssertEqual(replay.map(\.0), ["summary"])
    }

    func testNoJobEndedMeansNullLatency() async throws {
        let feed = ConsoleFeed(catalog: ModelCatalog())
        let stream = try XCTUnwrap(feed.subscribe()).stream
        var iterator = stream.makeAsyncIterator()
        _ = await next(&iterator)
        feed.flush(summary: true)
        let buffer = try await take(&iterator)
        XCTAssertTrue(String(buffer: buffer).contains(#""latency_ms":{"p50":null,"p99":null}"#), String(buffer: buffer))
    }

    func testClientsBeyondTheLimitAreRefused() throws {
        let feed = ConsoleFeed(catalog: ModelCatalog(), maxClients: 2)
        let first = try XCTUnwrap(feed.subscribe())
        let second = try XCTUnwrap(feed.subscribe())
        withExtendedLifetime((first.stream, second.stream)) {
            XCTAssertNil(feed.subscribe())
            feed.unsubscribe(first.id)
            let third = feed.subscribe()
            XCTAssertNotNil(third, "room again once a client went")
            withExtendedLifetime(third) {}
        }
    }

    func testFinishAllEndsStreamsAndRefusesNewClients() async throws {
        let feed = ConsoleFeed(catalog: ModelCatalog())
        let stream = try XCTUnwrap(feed.subscribe()).stream
        XCTAssertEqual(feed.clientCount, 1)
        feed.finishAll()
        var iterator = stream.makeAsyncIterator()
        _ = await next(&iterator)  // the retry line, sent before the end
        let end = await next(&iterator)
        XCTAssertNil(end)
        let after = try XCTUnwrap(feed.subscribe()).stream
        var afterIterator = after.makeAsyncIterator()
        let none = await next(&afterIterator)
        XCTAssertNil(none)
        XCTAssertEqual(feed.clientCount, 0)
    }

    func testAClientThatGoesIsForgotten() async throws {
        let feed = ConsoleFeed(catalog: ModelCatalog())
        var stream: ConsoleFeed.Stream? = try XCTUnwrap(feed.subscribe()).stream
        XCTAssertEqual(feed.clientCount, 1)
        stream = nil  // the connection's task ended and dropped its stream
        _ = stream
        for _ in 0..<50 where feed.clientCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(feed.clientCount, 0)
    }

    func testPercentile() {
        XCTAssertNil(ConsoleFeed.percentile([], 0.5))
        XCTAssertEqual(ConsoleFeed.percentile([7], 0.99), 7)
        let values = (1...100).map(Double.init)
        XCTAssertEqual(ConsoleFeed.percentile(values, 0.50), 50)
        XCTAssertEqual(ConsoleFeed.percentile(values, 0.99), 99)
    }
}
