import Foundation
import Jobs
import MQTT

/// Asks the result store about jobs directly over MQTT v5 request/response
/// (`conveyor/v1/store/query`, response topic + correlation data), as the ingress does, but
/// for many jobs at once and without an ingress process.
final class StoreQuerier: @unchecked Sendable {
    // @unchecked Sendable: `replies` is only touched with `lock` held.
    let client: MQTTClient
    let replyTopic: String
    private let lock = NSLock()
    /// Reply payloads by correlation data (the job id's bytes).
    private var replies: [[UInt8]: [UInt8]] = [:]
    private var task: Task<Void, Never>?

    private init(client: MQTTClient, replyTopic: String) {
        self.client = client
        self.replyTopic = replyTopic
    }

    static func start(port: Int) async throws -> StoreQuerier {
        let name = "store-querier-\(UUID().uuidString.prefix(8))"
        let client = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: port, clientID: name, protocolVersion: .v5))
        try await client.connect()
        let querier = StoreQuerier(client: client, replyTopic: "\(Topics.root)/store/replies/\(name)")
        let subscription = try await client.subscribe(querier.replyTopic, qos: 1)
        querier.task = Task { [querier] in
            for await message in subscription {
                guard let key = message.properties.correlationData else { continue }
                querier.lock.withLock { querier.replies[key] = message.payload }
            }
        }
        return querier
    }

    func stop() async {
        task?.cancel()
        await client.disconnect()
    }

    /// The store's record of each job (nil: "job not found"). Throws if some do not answer
    /// within `timeout`.
    func query(_ ids: [String], timeout: TimeInterval = 30) async throws -> [String: JobResult?] {
        let keys = ids.map { Array($0.utf8) }
        lock.withLock { for key in keys { replies[key] = nil } }
        for chunk in stride(from: 0, to: ids.count, by: 100).map({ Array(ids[$0..<min($0 + 100, ids.count)]) }) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in chunk {
                    group.addTask {
                        var properties = MQTTProperties()
                        properties.responseTopic = self.replyTopic
                        properties.correlationData = Array(id.utf8)
                        properties.contentType = "application/json"
                        let payload = (try? JSONSerialization.data(withJSONObject: ["job_id": id])) ?? Data()
                        try await self.client.publish(Topics.storeQuery, payload: [UInt8](payload), qos: 1, properties: properties)
                    }
                }
                try await group.waitForAll()
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while lock.withLock({ keys.contains { replies[$0] == nil } }) {
            if Date() >= deadline {
                let missing = lock.withLock { keys.filter { replies[$0] == nil }.count }
                throw PipelineError("the store answered \(ids.count - missing) of \(ids.count) queries within \(Int(timeout)) s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return lock.withLock {
            var answers: [String: JobResult?] = [:]
            for (id, key) in zip(ids, keys) {
                answers[id] = replies[key].flatMap { try? JSONCoding.decoder.decode(JobResult.self, from: Data($0)) }
            }
            return answers
        }
    }
}
