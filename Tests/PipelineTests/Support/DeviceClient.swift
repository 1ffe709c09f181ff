import Foundation
import Jobs
import MQTT

/// A device for tests: an MQTT client with a device account, subscribed to a filter,
/// collecting what arrives.
final class DeviceClient: @unchecked Sendable {
    // @unchecked Sendable: `received` is only touched with `lock` held.
    let client: MQTTClient
    private let lock = NSLock()
    private var received: [MQTTMessage] = []
    private var tasks: [Task<Void, Never>] = []

    init(_ configuration: MQTTConfiguration) {
        client = MQTTClient(configuration)
    }

    func connect() async throws { try await client.connect() }

    /// Subscribes; what arrives is collected. Returns the subscription (so a refusal throws).
    func listen(_ filter: String) async throws {
        let subscription = try await client.subscribe(filter, qos: 1)
        tasks.append(Task { [self] in
            for await message in subscription { lock.withLock { received.append(message) } }
        })
    }

    var messages: [MQTTMessage] { lock.withLock { received } }

    /// The first message satisfying `predicate` within `timeout` seconds.
    func message(timeout: TimeInterval, where predicate: (MQTTMessage) -> Bool = { _ in true }) async throws -> MQTTMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = messages.first(where: predicate) { return found }
            if Date() >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The result carried by the first message on `topic` within `timeout` seconds.
    func result(on topic: String, timeout: TimeInterval) async throws -> (JobResult, MQTTMessage)? {
        guard let message = try await message(timeout: timeout, where: { $0.topic == topic }) else { return nil }
        let result = try JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload))
        return (result, message)
    }

    func stop() async {
        for task in tasks { task.cancel() }
        await client.disconnect()
    }
}
