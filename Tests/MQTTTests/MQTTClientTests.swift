import Foundation
import MQTT
import TestBroker
import XCTest

/// Tests against a real mosquitto broker; each test starts its own.
final class MQTTClientTests: XCTestCase {
    // MARK: Round trips

    func testV5RoundTripKeepsAllProperties() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let subscriber = makeClient(broker, "props-sub")
        let publisher = makeClient(broker, "props-pub")
        try await subscriber.connect()
        try await publisher.connect()

        let inbox = Inbox(try await subscriber.subscribe("conveyor/test/props", qos: 1))
        let sent = MQTTProperties(
            responseTopic: "conveyor/replies/42",
            correlationData: [0, 1, 2, 0xFE, 0xFF],
            contentType: "application/json",
            userProperties: [
                MQTTUserProperty(name: "job-id", value: "42"),
                MQTTUserProperty(name: "model", value: "inception-v3"),
            ],
            messageExpiryInterval: 120,
            payloadFormatIsUTF8: true
        )
        let payload = Array(#"{"job":42}"#.utf8)
        try await publisher.publish("conveyor/test/props", payload: payload, qos: 1, properties: sent)

        let messages = try await inbox.wait(for: 1)
        let message = try XCTUnwrap(messages.first)
        XCTAssertEqual(message.topic, "conveyor/test/props")
        XCTAssertEqual(message.payload, payload)
        XCTAssertEqual(message.qos, 1)
        XCTAssertFalse(message.retain)
        XCTAssertEqual(message.properties.responseTopic, "conveyor/replies/42")
        XCTAssertEqual(message.properties.correlationData, [0, 1, 2, 0xFE, 0xFF])
        XCTAssertEqual(message.properties.contentType, "application/json")
        XCTAssertEqual(message.properties.userProperties, sent.userProperties)
        XCTAssertEqual(message.properties.userProperty("model"), "inception-v3")
        XCTAssertEqual(message.properties.payloadFormatIsUTF8, true)
        // The broker forwards the remaining lifetime, which may have ticked down a second.
        let expiry = try XCTUnwrap(message.properties.messageExpiryInterval)
        XCTAssert((118...120).contains(expiry), "message expiry \(expiry)")

        await subscriber.disconnect()
        await publisher.disconnect()
    }

    func testQoS1PublishCompletesAndConcurrentPublishesAllAcknowledged() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let subscriber = makeClient(broker, "qos-sub")
        let publisher = makeClient(broker, "qos-pub")
        try await subscriber.connect()
        try await publisher.connect()
        XCTAssertTrue(publisher.isConnected)

        // Nobody subscribed: the broker still acknowledges.
        try await publisher.publish("conveyor/nobody", payload: [1], qos: 1)
        try await publisher.publish("conveyor/nobody", payload: [2], qos: 0)

        let inbox = Inbox(try await subscriber.subscribe("conveyor/qos/#", qos: 1))
        // Many in flight at once, so acknowledgements race with registration.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    try await publisher.publish("conveyor/qos/\(index)", payload: Array("\(index)".utf8), qos: 1)
                }
            }
            try await group.waitForAll()
        }
        let messages = try await inbox.wait(for: 100)
        XCTAssertEqual(Set(messages.map { String(decoding: $0.payload, as: UTF8.self) }), Set((0..<100).map(String.init)))
        XCTAssert(messages.allSatisfy { $0.qos == 1 })

        await subscriber.disconnect()
        await publisher.disconnect()
    }

    func testThreeMegabytePayload() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let subscriber = makeClient(broker, "big-sub")
        let publisher = makeClient(broker, "big-pub")
        try await subscriber.connect()
        try await publisher.connect()

        let inbox = Inbox(try await subscriber.subscribe("conveyor/big"))
        var payload = [UInt8](repeating: 0, count: 3 * 1024 * 1024)
        payload.withUnsafeMutableBytes { bytes in
            var generator = SystemRandomNumberGenerator()
            for offset in stride(from: 0, to: bytes.count, by: 8) {
                bytes.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            }
        }
        try await publisher.publish("conveyor/big", payload: payload, qos: 1)

        let messages = try await inbox.wait(for: 1, timeout: .seconds(10))
        XCTAssertEqual(messages.first?.payload.count, payload.count)
        XCTAssert(messages.first?.payload == payload, "the 3 MB payload arrived changed")

        await subscriber.disconnect()
        await publisher.disconnect()
    }

    func testV311RoundTrip() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let subscriber = makeClient(broker, "v3-sub", version: .v311)
        let publisher = makeClient(broker, "v3-pub", version: .v311)
        try await subscriber.connect()
        try await publisher.connect()

        let inbox = Inbox(try await subscriber.subscribe("conveyor/v3/+", qos: 1))
        // Properties do not exist in 3.1.1: they are ignored, not an error.
        let ignored = MQTTProperties(responseTopic: "conveyor/replies", contentType: "text/plain")
        try await publisher.publish("conveyor/v3/a", payload: Array("hello".utf8), qos: 1, properties: ignored)
        try await publisher.publish("conveyor/v3/b", payload: Array("zero".utf8), qos: 0)

        let messages = try await inbox.wait(for: 2)
        XCTAssertEqual(messages.map(\.topic), ["conveyor/v3/a", "conveyor/v3/b"])
        XCTAssertEqual(messages.first?.payload, Array("hello".utf8))
        XCTAssertEqual(messages.first?.properties, MQTTProperties())

        await subscriber.disconnect()
        await publisher.disconnect()
    }

    // MARK: Shared subscriptions

    func testSharedSubscriptionSplitsMessagesBetweenClients() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let first = makeClient(broker, "worker-1")
        let second = makeClient(broker, "worker-2")
        let publisher = makeClient(broker, "jobs-pub")
        try await first.connect()
        try await second.connect()
        try await publisher.connect()

        let firstInbox = Inbox(try await first.subscribe("$share/g/conveyor/jobs", qos: 1))
        let secondInbox = Inbox(try await second.subscribe("$share/g/conveyor/jobs", qos: 1))
        for index in 0..<20 {
            try await publisher.publish("conveyor/jobs", payload: Array("job-\(index)".utf8), qos: 1)
        }

        let deadline = ContinuousClock.now + .seconds(5)
        while firstInbox.count + secondInbox.count < 20, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))  // nothing more may come
        let a = firstInbox.messages, b = secondInbox.messages
        XCTAssertEqual(a.count + b.count, 20)
        XCTAssertGreaterThan(a.count, 0, "the first worker got no job")
        XCTAssertGreaterThan(b.count, 0, "the second worker got no job")
        XCTAssertEqual(Set((a + b).map { String(decoding: $0.payload, as: UTF8.self) }).count, 20)
        XCTAssert((a + b).allSatisfy { $0.topic == "conveyor/jobs" })

        await first.disconnect()
        await second.disconnect()
        await publisher.disconnect()
    }

    // MARK: Reconnecting

    func testSubscriberGetsMessagesAfterBrokerRestart() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let subscriber = makeClient(broker, "restart-sub")
        try await subscriber.connect()
        let inbox = Inbox(try await subscriber.subscribe("conveyor/restart", qos: 1))

        broker.stop()
        try await waitUntil("the client notices the broker is gone") { !subscriber.isConnected }

        // A publish while the connection is down waits for the reconnect.
        let pendingPublish = Task { try await subscriber.publish("conveyor/restart/own", payload: [7], qos: 1) }
        try await Task.sleep(for: .milliseconds(200))
        try broker.start()
        try await pendingPublish.value
        try await waitUntil("the client reconnects") { subscriber.isConnected }

        let publisher = makeClient(broker, "restart-pub")
        try await publisher.connect()
        // The re-subscription may still be in flight just after the reconnect: retry a few times.
        let deadline = ContinuousClock.now + .seconds(5)
        var sent = 0
        while inbox.count == 0, ContinuousClock.now < deadline {
            try await publisher.publish("conveyor/restart", payload: Array("after-restart-\(sent)".utf8), qos: 1)
            sent += 1
            try await Task.sleep(for: .milliseconds(100))
        }
        let messages = inbox.messages
        XCTAssertFalse(messages.isEmpty, "no message after the broker restart")
        XCTAssert(messages.allSatisfy { String(decoding: $0.payload, as: UTF8.self).hasPrefix("after-restart-") })

        await subscriber.disconnect()
        await publisher.disconnect()
    }

    // MARK: Refusals

    func testPublishToDeniedTopicIsRefusedWithReasonCode135() async throws {
        let files = try TemporaryDirectory()
        defer { withExtendedLifetime(files) {} }
        // Lines before any `user` line apply to anonymous clients.
        let acl = try files.write("acl", """
            topic read #
            topic readwrite conveyor/allowed/#
            """)
        let broker = try startedBroker(["acl_file \(acl)"])
        defer { broker.stop() }
        let client = makeClient(broker, "acl-pub")
        try await client.connect()

        try await client.publish("conveyor/allowed/ok", payload: [1], qos: 1)
        do {
            try await client.publish("conveyor/denied", payload: [1], qos: 1)
            XCTFail("publishing to a denied topic succeeded")
        } catch let MQTTError.publishRefused(topic, code, reason) {
            XCTAssertEqual(topic, "conveyor/denied")
            XCTAssertEqual(code, 135)
            XCTAssert(reason.lowercased().contains("not authorized"), reason)
        }
        // The connection survives a refused publish.
        XCTAssertTrue(client.isConnected)
        try await client.publish("conveyor/allowed/again", payload: [2], qos: 1)

        await client.disconnect()
    }

    func testWrongPasswordIsRefusedAsNotAuthorized() async throws {
        let files = try TemporaryDirectory()
        defer { withExtendedLifetime(files) {} }
        let passwords = files.path("passwords")
        try run("/usr/bin/mosquitto_passwd", "-b", "-c", passwords, "conveyor", "s3cret")
        let broker = try startedBroker(["allow_anonymous false", "password_file \(passwords)"])
        defer { broker.stop() }

        let intruder = makeClient(broker, "wrong-password", username: "conveyor", password: "guess")
        do {
            try await intruder.connect()
            XCTFail("connected with a wrong password")
        } catch let MQTTError.connectionRefused(code, reason) {
            XCTAssert(reason.lowercased().contains("not authorized"), "reason: \(reason) (code \(code))")
        }
        XCTAssertFalse(intruder.isConnected)

        // MQTT 3.1.1 reports CONNACK code 5, which libmosquitto spells "not authorised".
        let oldIntruder = makeClient(broker, "wrong-password-v3", version: .v311, username: "conveyor", password: "guess")
        do {
            try await oldIntruder.connect()
            XCTFail("connected with a wrong password over MQTT 3.1.1")
        } catch let MQTTError.connectionRefused(code, reason) {
            XCTAssertEqual(code, 5)
            XCTAssert(reason.lowercased().contains("not authorised"), reason)
        }

        let member = makeClient(broker, "right-password", username: "conveyor", password: "s3cret")
        try await member.connect()
        XCTAssertTrue(member.isConnected)
        await member.disconnect()
    }

    // MARK: Lifecycle

    func testDisconnectFinishesSubscriptionStream() async throws {
        let broker = try startedBroker()
        defer { broker.stop() }
        let client = makeClient(broker, "finisher")
        try await client.connect()
        let subscription = try await client.subscribe("conveyor/finish")
        let finished = Task { () -> Int in
            var count = 0
            for await _ in subscription { count += 1 }
            return count
        }
        try await client.publish("conveyor/finish", payload: [1], qos: 1)
        try await Task.sleep(for: .milliseconds(100))
        await client.disconnect()

        let count = try await withTimeout(.seconds(3)) { await finished.value }
        XCTAssertEqual(count, 1)
        XCTAssertFalse(client.isConnected)
        do {
            try await client.publish("conveyor/finish", payload: [2], qos: 1)
            XCTFail("published after disconnect")
        } catch MQTTError.notConnected {}
    }

    /// libmosquitto 2.0 stops its network thread for good when the broker sends DISCONNECT
    /// (mosquitto itself does not on shutdown, so a fake broker plays that part here).
    func testReconnectsAfterBrokerSendsDisconnect() async throws {
        let fake = try FakeV5Broker(disconnectFirstConnectionWith: 0x8B)  // "Server shutting down"
        defer { fake.close() }
        let client = MQTTClient(MQTTConfiguration(
            port: fake.port, clientID: "kicked", reconnectDelayMin: 1, reconnectDelayMax: 2,
            connectTimeout: .seconds(5), operationTimeout: .seconds(5)
        ))
        try await client.connect()
        let subscription = try await client.subscribe("conveyor/kicked")
        try await waitUntil("the client connects and subscribes again", timeout: .seconds(8)) {
            fake.connections >= 2 && fake.subscriptions.filter { $0 == "conveyor/kicked" }.count >= 2 && client.isConnected
        }
        await subscription.cancel()
        await client.disconnect()
    }

    func testConnectTimesOutWhenNoBrokerListens() async throws {
        let broker = try MosquittoBroker()  // never started: nothing listens on its port
        var configuration = MQTTConfiguration(port: broker.port, clientID: "nobody-home")
        configuration.connectTimeout = .milliseconds(1500)
        let client = MQTTClient(configuration)
        let started = ContinuousClock.now
        do {
            try await client.connect()
            XCTFail("connected to nothing")
        } catch MQTTError.timeout {}
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4))
        XCTAssertFalse(client.isConnected)
    }

    func testConfigurationFromURL() throws {
        let plain = try MQTTConfiguration(url: "mqtt://broker.local", clientID: "a")
        XCTAssertEqual(plain.host, "broker.local")
        XCTAssertEqual(plain.port, 1883)
        XCTAssertNil(plain.tls)
        XCTAssertNil(plain.username)

        let secure = try MQTTConfiguration(url: "mqtts://user:p%40ss@10.0.0.5:18883", clientID: "b")
        XCTAssertEqual(secure.host, "10.0.0.5")
        XCTAssertEqual(secure.port, 18883)
        XCTAssertEqual(secure.username, "user")
        XCTAssertEqual(secure.password, "p@ss")
        XCTAssertNotNil(secure.tls)
        XCTAssertEqual(try MQTTConfiguration(url: "mqtts://h", clientID: "c").port, 8883)

        for bad in ["http://host", "mqtt://", "mqtt://host:0", "mqtt://host/path", "not a url"] {
            XCTAssertThrowsError(try MQTTConfiguration(url: bad, clientID: "d"), bad) { error in
                XCTAssertEqual(error as? MQTTError, .invalidURL(bad))
            }
        }
    }

    // MARK: - Helpers

    private func startedBroker(_ lines: [String] = []) throws -> MosquittoBroker {
        let broker = try MosquittoBroker(configLines: lines)
        try broker.start()
        return broker
    }

    private func makeClient(
        _ broker: MosquittoBroker,
        _ clientID: String,
        version: MQTTProtocolVersion = .v5,
        username: String? = nil,
        password: String? = nil
    ) -> MQTTClient {
        MQTTClient(MQTTConfiguration(
            port: broker.port,
            clientID: clientID,
            username: username,
            password: password,
            protocolVersion: version,
            reconnectDelayMin: 1,
            reconnectDelayMax: 2,
            connectTimeout: .seconds(5),
            operationTimeout: .seconds(10)
        ))
    }

    private func waitUntil(_ what: String, timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                XCTFail("timed out waiting until \(what)")
                throw MQTTError.timeout(what)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let result = try await group.next(), let value = result else {
                XCTFail("timed out after \(timeout)")
                throw MQTTError.timeout("test")
            }
            return value
        }
    }

    private func run(_ executable: String, _ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(executable) \(arguments)")
    }
}

/// Collects a subscription's messages in the background, so tests can wait with a timeout
/// without cancelling the iteration (which would end the subscription).
private final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [MQTTMessage] = []
    private var task: Task<Void, Never>?

    init(_ subscription: MQTTSubscription) {
        task = Task { [self] in
            for await message in subscription {
                append(message)
            }
        }
    }

    deinit {
        task?.cancel()
    }

    private func append(_ message: MQTTMessage) {
        lock.lock()
        received.append(message)
        lock.unlock()
    }

    var messages: [MQTTMessage] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    var count: Int { messages.count }

    /// Waits until at least `count` messages have arrived.
    func wait(for count: Int, timeout: Duration = .seconds(5)) async throws -> [MQTTMessage] {
        let deadline = ContinuousClock.now + timeout
        while self.count < count {
            guard ContinuousClock.now < deadline else {
                XCTFail("got \(self.count) of \(count) messages in \(timeout)")
                return messages
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return messages
    }
}

/// A temporary directory for ACL and password files, removed on deinit.
private final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("mqtt-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    func write(_ name: String, _ contents: String) throws -> String {
        let file = path(name)
        try (contents + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// Just enough of an MQTT 5 broker to send a DISCONNECT: accepts every CONNECT, answers
/// SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT, and ends its first connection with a DISCONNECT packet.
private final class FakeV5Broker: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let disconnectReason: UInt8
    private let lock = NSLock()
    private var connectionCount = 0
    private var subscribed: [String] = []

    var connections: Int { lock.lock(); defer { lock.unlock() }; return connectionCount }
    var subscriptions: [String] { lock.lock(); defer { lock.unlock() }; return subscribed }

    init(disconnectFirstConnectionWith reason: UInt8) throws {
        disconnectReason = reason
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard ok else { throw MQTTError.library(code: Int(errno), message: "fake broker socket") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            lock.lock()
            connectionCount += 1
            let first = connectionCount == 1
            lock.unlock()
            Thread.detachNewThread { [self] in serve(connection, kickAfterSubscribe: first) }
        }
    }

    private func serve(_ connection: Int32, kickAfterSubscribe: Bool) {
        defer { Glibc.close(connection) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { return }
            buffer += chunk[0..<count]
            while let (type, body, size) = Self.packet(in: buffer) {
                buffer.removeFirst(size)
                switch type {
                case 1:  // CONNECT -> CONNACK, success, no properties
                    send(connection, [0x20, 0x03, 0x00, 0x00, 0x00])
                case 8:  // SUBSCRIBE -> SUBACK granting QoS 1
                    let topicLength = Int(body[3]) << 8 | Int(body[4])  // after mid and an empty property length
                    lock.lock()
                    subscribed.append(String(decoding: body[5..<(5 + topicLength)], as: UTF8.self))
                    lock.unlock()
                    send(connection, [0x90, 0x04, body[0], body[1], 0x00, 0x01])
                    if kickAfterSubscribe {
                        usleep(200_000)
                        send(connection, [0xE0, 0x02, disconnectReason, 0x00])
                        return
                    }
                case 10:  // UNSUBSCRIBE -> UNSUBACK, success
                    send(connection, [0xB0, 0x04, body[0], body[1], 0x00, 0x00])
                case 12:  // PINGREQ -> PINGRESP
                    send(connection, [0xD0, 0x00])
                case 14:  // DISCONNECT
                    return
                default:
                    break
                }
            }
        }
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The first complete packet in `buffer`: its type, body and total size.
    private static func packet(in buffer: [UInt8]) -> (UInt8, [UInt8], Int)? {
        guard buffer.count >= 2 else { return nil }
        var length = 0, multiplier = 1, index = 1
        while true {
            guard index < buffer.count else { return nil }
            length += Int(buffer[index] & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if buffer[index - 1] & 0x80 == 0 { break }
        }
        guard buffer.count >= index + length else { return nil }
        return (buffer[0] >> 4, Array(buffer[index..<(index + length)]), index + length)
    }
}
