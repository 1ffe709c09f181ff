import Foundation
import Jobs
import XCTest

/// Two `conveyor worker` processes behind one shared subscription: they split a stream of
/// jobs, and when one is killed (SIGKILL) mid-stream the other finishes every remaining job,
/// including those the dead worker had already received (the store's ledger publishes a
/// request again when its lease runs out with no result).
final class WorkerFailoverTests: OwnPipelineTestCase {
    func testTwoWorkersShareTheStreamAndTheSurvivorFinishesAfterAKill() async throws {
        let (workerA, workerB) = ("worker-a", "worker-b")
        let jobCount = 30
        let pipeline = try Pipeline(name: "failover")
        pipeline.storeArguments = ["--lease-seconds", "20"]
        self.pipeline = pipeline
        try await pipeline.start(workers: [workerA, workerB], ingresses: [.init(name: "ingress")])
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        // The smaller photos: the network's cost is the same for all, decoding is cheaper.
        let images = try ["coral/hot_dog.jpg", "coral/cat_720p.jpg", "cat.jpg", "coral/parrot.jpg", "0004.jpg"]
            .map { try TestImages.contents($0) }
        // Submitted all at once, so that they are all queued when the first results come.
        let ids: [String] = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<jobCount {
                group.addTask { (i, try await pipeline.submit(images[i % images.count])) }
            }
            var submitted: [(Int, String)] = []
            for try await job in group { submitted.append(job) }
            return submitted.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let idSet = Set(ids)

        // Kill A after the first few results, once both workers have answered.
        let bothAnswered = try await listener.wait(timeout: 240) { received in
            let workers = received.compactMap(\.result).filter { $0.status.isTerminal && idSet.contains($0.jobID) }.map(\.worker)
            return workers.contains(workerA) && workers.contains(workerB) && workers.count >= 4
        }
        let beforeKill = listener.terminalByJob.filter { idSet.contains($0.key) }
        XCTAssertTrue(bothAnswered, "both workers should take jobs from the stream; results so far by worker: "
                      + "\(Dictionary(grouping: beforeKill.values, by: { $0.worker ?? "?" }).mapValues(\.count))\n\(pipeline.diagnostics())")
        let workers = Set(beforeKill.values.compactMap(\.worker))
        XCTAssertEqual(workers, [workerA, workerB], "the results' worker field should show both client ids")

        let processA = try XCTUnwrap(pipeline.workers[workerA])
        processA.killHard()
        let killedAt = Date()
        let doneByA = beforeKill.values.filter { $0.worker == workerA }.count
        let doneByB = beforeKill.values.filter { $0.worker == workerB }.count

        // The survivor works through what is left. Stop waiting when every job has a result, or
        // when nothing new has arrived for 60 s (longer than a lease: a lost job never will).
        var lastCount = -1
        var lastChange = Date()
        while true {
            let done = listener.terminalByJob.keys.filter(idSet.contains).count
            if done == jobCount { break }
            if done != lastCount {
                lastCount = done
                lastChange = Date()
            }
            if Date().timeIntervalSince(lastChange) > 60 || Date().timeIntervalSince(killedAt) > 400 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let waited = Date().timeIntervalSince(killedAt)

        // What the store says about each job.
        var statuses: [String: String] = [:]
        for id in ids {
            let reply = try await pipeline.job(id)
            if reply.status == 200 {
                statuses[id] = try JobView(id: id, reply: reply).status
            } else {
                statuses[id] = "HTTP \(reply.status)"
            }
        }
        let byStatus = Dictionary(grouping: ids, by: { statuses[$0] ?? "?" }).mapValues(\.count)
        let succeeded = byStatus["succeeded"] ?? 0
        let finished = listener.terminalByJob.filter { idSet.contains($0.key) }
        let afterKill = finished.values.filter { beforeKill[$0.jobID] == nil }
        let afterKillByWorker = Dictionary(grouping: afterKill, by: { $0.worker ?? "?" }).mapValues(\.count)
        let summary = """
            failover: \(jobCount) jobs; before the kill \(doneByA) done by \(workerA), \(doneByB) by \(workerB); \
            after the SIGKILL of \(workerA) (waited \(Int(waited)) s) \(afterKill.count) more results \(afterKillByWorker); \
            store statuses \(byStatus.sorted { $0.key < $1.key }); succeeded \(succeeded)/\(jobCount)
            """
        print(summary)

        XCTAssertTrue(pipeline.workers[workerB]?.isRunning == true, "\(workerB) should still run\n\(pipeline.diagnostics())")
        XCTAssertTrue(afterKill.allSatisfy { $0.worker == workerB }, "results after the kill must come from \(workerB): \(afterKillByWorker)")
        XCTAssertTrue(finished.values.allSatisfy { $0.status == .succeeded }, "every result should be a success")
        // Nothing is lost: the jobs A held when it died were delivered again and B finished them.
        XCTAssertEqual(succeeded, jobCount, summary)
    }
}
