import Foundation
import MQTT

/// A test client subscribed to one topic filter, keeping every message it receives.
final class MessageCollector: @unchecked Sendable {
    // @unchecked Sendable: `received` is only touched with `lock` held.
    let client: MQTTClient
    private let lock = NSLock()
    private var received: [MQTTMessage] = []
    private var task: Task<Void, Never>?

    private init(client: MQTTClient) { self.client = client }

    /// Connects (MQTT v5) to the broker on `port` and subscribes to `filter`.
    static func start(port: Int, filter: String) async throws -> MessageCollector {
        let client = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: port,
                                                  clientID: "collector-\(UUID().uuidString.prefix(8))", protocolVersion: .v5))
        try await client.connect()
        let collector = MessageCollector(client: client)
        let subscription = try await client.subscribe(filter, qos: 1)
        collector.task = Task { [collector] in
            for await message in subscription {
                collector.lock.withLock { collector.received.append(message) }
            }
        }
        return collector
    }

    func stop() async {
        task?.cancel()
        await client.disconnect()
    }

    var all: [MQTTMessage] { lock.withLock { received } }

    /// Waits for the first message satisfying `predicate`.
    func first(timeout: TimeInterval, where predicate: (MQTTMessage) -> Bool) async throws -> MQTTMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = all.first(where: predicate) { return found }
            if Date() >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
