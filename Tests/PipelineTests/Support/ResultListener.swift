import Foundation
import Jobs
import MQTT

/// A test client subscribed to `conveyor/v1/results/+`, collecting every result it sees,
/// with the time each arrived.
final class ResultListener: @unchecked Sendable {
    // @unchecked Sendable: the collected state is only touched with `lock` held.
    struct Received: Sendable {
        var topic: String
        var result: JobResult?
        var payload: [UInt8]
        var arrivedAt: Date
    }

    let client: MQTTClient
    private let lock = NSLock()
    private var received: [Received] = []
    private var task: Task<Void, Never>?

    private init(client: MQTTClient) { self.client = client }

    /// Connects to the broker on `port` and subscribes to every job's result topic.
    static func start(port: Int, clientID: String = "pipeline-tests-\(UUID().uuidString.prefix(8))") async throws -> ResultListener {
        let client = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: port, clientID: clientID, protocolVersion: .v5))
        try await client.connect()
        let listener = ResultListener(client: client)
        let subscription = try await client.subscribe(Topics.allResults, qos: 1)
        listener.task = Task { [listener] in
            for await message in subscription {
                let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload))
                listener.append(Received(topic: message.topic, result: result, payload: message.payload, arrivedAt: Date()))
            }
        }
        return listener
    }

    func stop() async {
        task?.cancel()
        await client.disconnect()
    }

    private func append(_ item: Received) {
        lock.lock()
        received.append(item)
        lock.unlock()
    }

    var all: [Received] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    var results: [JobResult] { all.compactMap(\.result) }

    /// Terminal results, first one per job id.
    var terminalByJob: [String: JobResult] {
        var byJob: [String: JobResult] = [:]
        for result in results where result.status.isTerminal && byJob[result.jobID] == nil {
            byJob[result.jobID] = result
        }
        return byJob
    }

    /// Waits for the first result satisfying `predicate`.
    func first(timeout: TimeInterval, where predicate: (JobResult) -> Bool) async throws -> JobResult? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = results.first(where: predicate) { return found }
            if Date() >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until `condition` holds over everything received so far.
    func wait(timeout: TimeInterval, until condition: ([Received]) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if condition(all) { return true }
            if Date() >= deadline { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
