import Foundation
import Jobs
import MQTT
import XCTest

/// Dynamic batching in real workers (MobileNetV2, mosquitto, the store): requests published
/// together run as one engine batch of one model version, each with its own result, and a
/// bad image fails alone. A long batch timeout makes the batches certain without timing
/// assertions: a thread waits up to 3 s for its batch to fill, and a burst of requests
/// published at once is decoded well within that.
final class BatchingTests: FaultTestCase {
    static let batchArguments = ["--max-batch-size", "8", "--batch-timeout-ms", "3000"]

    /// Six good photos and three bad images published at once to one worker: each good one
    /// succeeds with the classes and scores `conveyor classify` gives it alone, in a batch of
    /// more than one; each bad one fails with its own reason; every job ends once.
    func testGoodAndBadImagesInOneBatchEachGetTheirOwnResult() async throws {
        let pipeline = try makePipeline("batch-mixed", lease: 30)
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments + Self.batchArguments)
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let goodFiles = ["cat.jpg", "0000.jpg", "0001.jpg", "coral/hot_dog.jpg", "coral/parrot.jpg", "coral/cat_720p.jpg"]
        let cat = try TestImages.contents("cat.jpg")
        let bad: [(id: String, image: Data, reason: String)] = [
            ("mixed-bad-truncated", cat.prefix(5000), "bad image"),
            ("mixed-bad-huge", try TestImages.jpeg(cat, claimingWidth: 60000, height: 60000), "over the limit"),
            ("mixed-bad-scrambled", try BrokenJPEGs.scrambledScan(cat), "bad image"),
        ]
        var requests: [JobRequest] = []
        for (i, file) in goodFiles.enumerated() {
            requests.append(JobRequest(jobID: "mixed-good-\(i)", model: Self.model, image: try TestImages.contents(file)))
            if i < bad.count { requests.append(JobRequest(jobID: bad[i].id, model: Self.model, image: bad[i].image)) }
        }
        try await Self.publish(requests, port: pipeline.broker.port)

        let ids = requests.map(\.jobID)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 6, "failed": 3], pipeline.diagnostics())
        let seen = try await listener.wait(timeout: 30) { received in
            Set(received.compactMap(\.result).filter { $0.status.isTerminal }.map(\.jobID)) == Set(ids)
        }
        XCTAssertTrue(seen, "every result should be published")
        let published = listener.results.filter { $0.status.isTerminal }
        for id in ids {
            XCTAssertEqual(published.filter { $0.jobID == id }.count, 1, "job \(id) should end exactly once")
        }

        let reference = try Self.classifyAlone(goodFiles)
        for (i, file) in goodFiles.enumerated() {
            let result = try XCTUnwrap(listener.terminalByJob["mixed-good-\(i)"])
            XCTAssertEqual(result.status, .succeeded, "\(file): \(result)")
            XCTAssertGreaterThan(result.batchSize ?? 0, 1, "\(file) should have run in a batch: \(result)")
            let expected = try XCTUnwrap(reference[file])
            XCTAssertEqual(result.top.map(\.index), expected.map(\.index), "\(file): same classes as batch-1")
            for (got, want) in zip(result.top, expected) {
                XCTAssertEqual(got.label, want.label, file)
                XCTAssertEqual(Double(got.score), want.score, accuracy: 1e-4, "\(file): \(got.label)")
            }
        }
        for (id, _, reason) in bad {
            let result = try XCTUnwrap(listener.terminalByJob[id])
            XCTAssertEqual(result.status, .failed, id)
            XCTAssertTrue(result.error?.contains(reason) == true, "\(id): \(result.error ?? "no error")")
            XCTAssertTrue(result.error?.hasPrefix("bad image") == true, "\(id): \(result.error ?? "no error")")
            XCTAssertNil(result.batchSize, "\(id) never reached the engine")
            XCTAssertTrue(result.top.isEmpty)
        }
    }

    /// A repository serving versions 1 and 2 of the model; requests for both, interleaved,
    /// published at once. Batches never mix versions: no batch holds more than the four
    /// requests of one version, each result names the version it asked for, and batching
    /// did happen.
    func testVersionsNeverShareABatch() async throws {
        let pipeline = try Pipeline(name: "batch-versions")
        self.pipeline = pipeline
        pipeline.model = Paths.mobileNet
        pipeline.labels = Paths.mobileNetLabels
        pipeline.storeArguments = ["--lease-seconds", "30"]
        let repository = pipeline.directory.appendingPathComponent("models", isDirectory: true)
        for version in [1, 2] {
            try TFServingAPITests.makeVersion(repository, Self.model, version, model: Paths.mobileNet,
                                              labels: ("labels.txt", Paths.mobileNetLabels))
        }
        let config = repository.appendingPathComponent("models.config")
        try Data("""
        model_config_list {
          config {
            name: '\(Self.model)' base_path: '\(Self.model)' model_platform: 'tensorflow'
            model_version_policy { all {} }
          }
        }
        """.utf8).write(to: config)
        try await pipeline.start()
        let worker = try pipeline.launchWorker(
            clientID: "worker-v", extraArguments: Self.workerArguments + Self.batchArguments + ["--model-config-file", config.path])
        for version in [1, 2] {
            try worker.waitForLog("subscribed to \(Topics.workerSubscription(model: Self.model, version: Int64(version)))", timeout: 240)
        }
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let images = try Self.images()
        var requests: [JobRequest] = []
        for i in 0..<8 {
            requests.append(JobRequest(jobID: "versions-\(i)", model: Self.model, version: 1 + i % 2, image: images[i % images.count]))
        }
        try await Self.publish(requests, port: pipeline.broker.port)

        let ids = requests.map(\.jobID)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 8], pipeline.diagnostics())
        let seen = try await listener.wait(timeout: 30) { received in
            Set(received.compactMap(\.result).filter { $0.status.isTerminal }.map(\.jobID)) == Set(ids)
        }
        XCTAssertTrue(seen, "every result should be published")
        for request in requests {
            let result = try XCTUnwrap(listener.terminalByJob[request.jobID])
            XCTAssertEqual(result.version, request.version, "\(request.jobID) ran on the version it asked for")
            let size = try XCTUnwrap(result.batchSize, "\(result)")
            XCTAssertLessThanOrEqual(size, 4, "\(request.jobID) shared a batch with the other version's requests")
        }
        XCTAssertTrue(listener.terminalByJob.values.contains { ($0.batchSize ?? 0) > 1 }, "requests should have been batched")
    }

    /// A worker is SIGKILLed while it holds a batch of six started jobs (an injected delay
    /// keeps them from finishing). Their running leases end, the ledger publishes them
    /// again, and a second worker runs them: each job ends succeeded, with exactly one
    /// terminal result published. The second worker found the dead worker's batch in the
    /// batch journal, so it runs each of those jobs alone.
    func testAKilledWorkersBatchIsRedeliveredAndEachJobEndsOnce() async throws {
        let pipeline = try makePipeline("batch-kill", lease: 6)
        try await pipeline.start()
        let victim = try pipeline.launchWorker(clientID: "worker-victim", extraArguments: Self.workerArguments + Self.batchArguments,
                                               environment: ["CONVEYOR_FAULT_INJECT": "delay120000:kill-"])
        try victim.waitForLog("subscribed to $share/", timeout: 240)
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let images = try Self.images()
        let requests = (0..<6).map { JobRequest(jobID: "kill-\($0)", model: Self.model, image: images[$0 % images.count]) }
        try await Self.publish(requests, port: pipeline.broker.port)
        let ids = requests.map(\.jobID)
        for id in ids { try victim.waitForLog("on job \(id) (CONVEYOR_FAULT_INJECT)", timeout: 60) }
        victim.killHard()

        let rescuer = try pipeline.launchWorker(clientID: "worker-rescuer", extraArguments: Self.workerArguments + Self.batchArguments)
        try rescuer.waitForLog("subscribed to $share/", timeout: 240)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 180)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 6], pipeline.diagnostics())
        for id in ids {
            XCTAssertEqual(answers[id]??.worker, "worker-rescuer", "\(id) ends where it was run again")
        }
        XCTAssertTrue(rescuer.log.contains("were in a batch when a worker on this machine died"), rescuer.logTail())
        let seen = try await listener.wait(timeout: 30) { received in
            Set(received.compactMap(\.result).filter { $0.status.isTerminal }.map(\.jobID)) == Set(ids)
        }
        XCTAssertTrue(seen, "every result should be published")
        // Let any late duplicate arrive before counting.
        try await Task.sleep(for: .seconds(2))
        let published = listener.results.filter { $0.status.isTerminal }
        for id in ids {
            XCTAssertEqual(published.filter { $0.jobID == id }.count, 1, "job \(id) should end exactly once")
            XCTAssertEqual(listener.terminalByJob[id]?.batchSize, 1, "\(id) was in the batch that died: it runs alone")
        }
        XCTAssertTrue(pipeline.store?.log.contains("ledger: published again") == true,
                      "the killed worker's jobs should have been published again")
    }

    /// Publishes `requests` (binary form) on their models' request topics, one after another
    /// from one connection.
    static func publish(_ requests: [JobRequest], port: Int) async throws {
        let client = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: port, clientID: "device-\(UUID().uuidString.prefix(8))"))
        try await client.connect()
        for request in requests {
            let (payload, properties) = request.binaryMessage()
            try await client.publish(Topics.requests(model: request.model, version: request.version.map(Int64.init)),
                                     payload: payload, qos: 1, properties: properties)
        }
        await client.disconnect()
    }

    /// `conveyor classify --json` of each file alone (batch 1): its top 5 as (index, label, score).
    static func classifyAlone(_ files: [String]) throws -> [String: [(index: Int, label: String, score: Double)]] {
        let paths = files.map { Paths.images.appendingPathComponent($0).path }
        let (status, output) = try ProgramRun.run(Paths.binary, ["classify", "--model", Paths.mobileNet, "--labels",
                                                                 Paths.mobileNetLabels, "--threads", "1", "--json"] + paths)
        XCTAssertEqual(status, 0, output)
        guard let start = output.firstIndex(of: "["),
              let list = try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]] else {
            throw PipelineError("conveyor classify --json printed no list: \(output)")
        }
        var byFile: [String: [(index: Int, label: String, score: Double)]] = [:]
        for (file, path) in zip(files, paths) {
            guard let entry = list.first(where: { $0["file"] as? String == path }),
                  let top = entry["top"] as? [[String: Any]] else {
                throw PipelineError("conveyor classify --json has no classes for \(path): \(output)")
            }
            byFile[file] = top.compactMap { item in
                guard let index = item["index"] as? Int, let label = item["label"] as? String,
                      let score = item["score"] as? Double else { return nil }
                return (index, label, score)
            }
        }
        return byFile
    }
}
