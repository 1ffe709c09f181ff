import Foundation
import Jobs
import MQTT
import XCTest

/// `conveyor store` stopped with SIGTERM and started again on the same SQLite file keeps
/// serving the jobs that finished before, and records new ones.
final class ResultStoreRestartTests: OwnPipelineTestCase {
    func testFinishedJobsAreStillServedAfterTheStoreRestarts() async throws {
        let pipeline = try Pipeline(name: "restart")
        self.pipeline = pipeline
        try await pipeline.start(workers: ["worker-r"], ingresses: [.init(name: "ingress")])

        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let good = try await pipeline.submit(try TestImages.contents("coral/cat_720p.jpg"))
        let bad = try await pipeline.submit(cat.prefix(cat.count / 2))
        // Wait until the store itself has recorded both (plain GET /job is the store's record;
        // a long poll may answer from the result topic a moment before the store has it).
        var before: [String: JobView] = [:]
        for id in [good, bad] { before[id] = try await pipeline.pollUntilTerminal(id, timeout: 180) }
        XCTAssertEqual(before[good]?.status, "succeeded", "\(String(describing: before[good]))")
        XCTAssertEqual(before[bad]?.status, "failed", "\(String(describing: before[bad]))")

        let ended = try pipeline.restartStore()
        XCTAssertEqual(ended, "exit 0", "the store should stop cleanly on SIGTERM\n\(pipeline.store?.logTail() ?? "")")

        for id in [good, bad] {
            let reply = try await pipeline.job(id)
            XCTAssertEqual(reply.status, 200, "job \(id) after the restart: \(reply.text.prefix(300))\n\(pipeline.diagnostics())")
            guard reply.status == 200, let old = before[id] else { continue }
            let job = try JobView(id: id, reply: reply)
            XCTAssertEqual(job.status, old.status)
            XCTAssertEqual(job.top, old.top)
            XCTAssertEqual(job.prediction, old.prediction)
            XCTAssertEqual(job.error, old.error)
            XCTAssertEqual(job.timings, old.timings)
        }

        // The restarted store records and serves new jobs too.
        let fresh = try await pipeline.submit(try TestImages.contents("coral/hot_dog.jpg"))
        let job = try await pipeline.waitForTerminal(fresh)
        XCTAssertEqual(job.status, "succeeded", "\(job)\n\(pipeline.diagnostics())")
        XCTAssertEqual(pipeline.stoppedServices, [], pipeline.diagnostics())
    }

    /// Results the store has already received (and so acknowledged to the broker, which will
    /// never send them again) must be in the database after a graceful stop (SIGTERM).
    func testAGracefulStopKeepsEveryResultTheStoreHasReceived() async throws {
        let pipeline = try Pipeline(name: "store-drain")
        self.pipeline = pipeline
        try await pipeline.start()  // the store alone
        let publisher = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: pipeline.broker.port,
                                                     clientID: "drain-publisher-\(UUID().uuidString.prefix(6))"))
        try await publisher.connect()
        let querier = try await StoreQuerier.start(port: pipeline.broker.port)
        defer {
            Task {
                await publisher.disconnect()
                await querier.stop()
            }
        }

        let ids = (0..<1000).map { String(format: "drain-%04d", $0) }
        for chunk in stride(from: 0, to: ids.count, by: 100).map({ Array(ids[$0..<min($0 + 100, ids.count)]) }) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in chunk {
                    let result = JobResult(jobID: id, model: "inception_v3", status: .succeeded,
                                           top: [ClassScore(index: 1, label: "goldfish", score: 0.5)],
                                           timings: JobTimings(finishedAt: Clock.nowMillis()), worker: "pipeline-tests")
                    group.addTask {
                        try await publisher.publish(Topics.result(job: id), payload: [UInt8](result.jsonPayload()), qos: 1)
                    }
                }
                try await group.waitForAll()
            }
        }
        // A query published after them reaches the store after them: once it is answered,
        // the store's connection has taken every result.
        _ = try await querier.query([ids[ids.count - 1]])

        let ended = try pipeline.restartStore()
        XCTAssertEqual(ended, "exit 0", "the store should stop cleanly on SIGTERM")

        let answers = try await querier.query(ids, timeout: 60)
        let recorded = answers.values.filter { $0?.status == .succeeded }.count
        let dropped = pipeline.store?.log.components(separatedBy: "cannot record result").count ?? 1
        XCTAssertEqual(recorded, ids.count,
                       "after SIGTERM the store had recorded \(recorded) of the \(ids.count) results it had received; "
                       + "its log has \(dropped - 1) \"cannot record result\" lines")
    }
}
