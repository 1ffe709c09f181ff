import Foundation
import Jobs
import MQTT
import XCTest

/// Base of the fault tests: a pipeline on MobileNetV2 (fast) with short leases, helpers to
/// submit a stream of jobs over HTTP and to wait until the store's ledger has every job in a
/// terminal state.
class FaultTestCase: OwnPipelineTestCase {
    /// Small photos: decoding costs little next to the network.
    static let imageFiles = ["cat.jpg", "coral/cat_720p.jpg", "coral/hot_dog.jpg"]
    /// Workers beat every second (the lease is a few seconds) and use one engine thread each.
    static let workerArguments = ["--heartbeat-seconds", "1", "--threads", "1"]
    static let model = "mobilenet"

    var querier: StoreQuerier?

    override func tearDown() async throws {
        await querier?.stop()
        querier = nil
        try await super.tearDown()
    }

    /// A pipeline serving MobileNetV2 as "mobilenet", its store with the given lease, TTL and
    /// attempts.
    func makePipeline(_ name: String, lease: Double = 4, ttl: Double = 600, maxDeliveries: Int = 3,
                      brokerPersistence: Bool = false) throws -> Pipeline {
        let pipeline = try Pipeline(name: name, brokerPersistence: brokerPersistence)
        pipeline.model = Paths.mobileNet
        pipeline.labels = Paths.mobileNetLabels
        pipeline.modelName = Self.model
        pipeline.storeArguments = ["--lease-seconds", "\(lease)", "--job-ttl-seconds", "\(ttl)",
                                   "--max-deliveries", "\(maxDeliveries)"]
        self.pipeline = pipeline
        return pipeline
    }

    static func images() throws -> [Data] { try Self.imageFiles.map { try TestImages.contents($0) } }

    /// POSTs `count` jobs, `concurrency` at a time; returns their ids in submission order.
    /// A 503 (e.g. while the broker restarts) is retried after its Retry-After.
    static func submit(_ count: Int, to pipeline: Pipeline, concurrency: Int = 8) async throws -> [String] {
        let images = try images()
        return try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var ids = [String?](repeating: nil, count: count)
            var next = 0
            func add() {
                let i = next
                next += 1
                let image = images[i % images.count]
                group.addTask { (i, try await Self.submitOne(image, to: pipeline)) }
            }
            for _ in 0..<min(concurrency, count) { add() }
            while let (i, id) = try await group.next() {
                ids[i] = id
                if next < count { add() }
            }
            return ids.map { $0! }
        }
    }

    private static func submitOne(_ image: Data, to pipeline: Pipeline) async throws -> String {
        let deadline = Date().addingTimeInterval(60)
        while true {
            let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
            if reply.status == 202, let id = reply.object?["job_id"] as? String { return id }
            guard reply.status == 503, Date() < deadline else {
                throw PipelineError("POST /predict answered \(reply.status): \(reply.text.prefix(300))")
            }
            try await Task.sleep(for: .seconds(Double(reply.header("Retry-After") ?? "1") ?? 1))
        }
    }

    /// A client asking the store directly (started once per test).
    func storeQuerier(_ pipeline: Pipeline) async throws -> StoreQuerier {
        if let querier { return querier }
        let querier = try await StoreQuerier.start(port: pipeline.broker.port)
        self.querier = querier
        return querier
    }

    /// Asks the store about every job until all are terminal or `timeout` passes; returns the
    /// last answers (nil: the store does not know the job). Tolerates the store being away.
    func waitUntilTerminal(_ ids: [String], in pipeline: Pipeline, timeout: TimeInterval) async throws -> [String: JobResult?] {
        let querier = try await storeQuerier(pipeline)
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: JobResult?] = [:]
        while true {
            if let answers = try? await querier.query(ids, timeout: 20) {
                last = answers
                if answers.values.allSatisfy({ $0?.status.isTerminal == true }) { return answers }
            }
            if Date() >= deadline { return last }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// "succeeded: 498, failed: 2, unknown: 0" style counts.
    static func countByStatus(_ answers: [String: JobResult?]) -> [String: Int] {
        Dictionary(grouping: answers.values, by: { $0?.status.rawValue ?? "unknown" }).mapValues(\.count)
    }

    /// Publishes one request straight to the request topic (as a device would), with a chosen id.
    func publishRequest(id: String, image: Data, port: Int) async throws {
        let client = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: port, clientID: "device-\(UUID().uuidString.prefix(8))"))
        try await client.connect()
        let request = JobRequest(jobID: id, model: Self.model, image: image)
        let (payload, properties) = request.binaryMessage()
        try await client.publish(Topics.requests(model: Self.model), payload: payload, qos: 1, properties: properties)
        await client.disconnect()
    }
}
