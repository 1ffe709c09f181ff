import Foundation
import Jobs
import MQTT
import XCTest

/// The shipped `mosquitto.conf` and `mosquitto.acl` with accounts made by the shipped
/// `scripts/make-credentials.sh`, on a real mosquitto each test starts on free loopback
/// ports and stops: authentication, the devices' isolation, and the TLS listener.
final class BrokerSecurityTests: XCTestCase {
    private var secured: SecuredBroker?

    override func tearDown() async throws {
        if let secured {
            if (testRun?.totalFailureCount ?? 1) > 0 { print("mosquitto log:\n\(secured.broker.log)") }
            secured.broker.stop()
        }
        secured = nil
        try await super.tearDown()
    }

    private func start(tls: Bool = false) throws -> SecuredBroker {
        let broker = try SecuredBroker(devices: ["cam-a", "cam-b"], tls: tls)
        try broker.broker.start()
        secured = broker
        return broker
    }

    private func connected(_ config: MQTTConfiguration) async throws -> DeviceClient {
        let client = DeviceClient(config)
        try await client.connect()
        return client
    }

    func testDeviceReadsOnlyItsOwnReplies() async throws {
        let broker = try start()
        let spy = try await connected(broker.configuration("cam-a"))
        let owner = try await connected(broker.configuration("cam-b"))
        let worker = try await connected(broker.configuration("worker"))
        // cam-a tries to listen to cam-b's replies and to every result; the broker either
        // refuses the subscription or grants it and delivers nothing.
        for filter in [Topics.deviceRepliesPrefix(device: "cam-b") + "#", Topics.allResults, "conveyor/v1/#"] {
            do { try await spy.listen(filter) } catch let error as MQTTError {
                guard case .subscriptionRefused = error else { throw error }
            }
        }
        try await owner.listen(Topics.deviceRepliesPrefix(device: "cam-b") + "#")
        let reply = Topics.deviceReply(device: "cam-b", key: "j1")
        let payload = [UInt8](JobResult(jobID: "cam-b_j1", model: "m", status: .succeeded).jsonPayload())
        try await worker.client.publish(reply, payload: payload, qos: 1)
        try await worker.client.publish(Topics.result(job: "cam-b_j1"), payload: payload, qos: 1)

        let delivered = try await owner.message(timeout: 5) { $0.topic == reply }
        XCTAssertNotNil(delivered, "cam-b did not get the reply on its own topic")
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(spy.messages.map(\.topic), [], "cam-a received another device's reply or a result")
        for client in [spy, owner, worker] { await client.stop() }
    }

    func testDeviceCannotWriteResultsOrIntoAnotherNamespace() async throws {
        let broker = try start()
        let device = try await connected(broker.configuration("cam-a"))
        let forbidden = [
            Topics.result(job: "cam-b_j1"),
            Topics.event(job: "cam-b_j1"),
            Topics.deviceReply(device: "cam-b", key: "j1"),
            Topics.deviceReply(device: "cam-a", key: "j1"),  // not even its own replies: only workers answer
            Topics.deviceRequests(device: "cam-b", model: "m"),
            Topics.requests(model: "m"),
            Topics.storeQuery,
        ]
        for topic in forbidden {
            do {
                try await device.client.publish(topic, payload: Array("forged".utf8), qos: 1)
                XCTFail("cam-a could publish to \(topic)")
            } catch let MQTTError.publishRefused(refused, code, _) {
                XCTAssertEqual(refused, topic)
                XCTAssertEqual(code, 135, "PUBACK reason for \(topic)")
            }
        }
        // Its own request topic is open to it.
        try await device.client.publish(Topics.deviceRequests(device: "cam-a", model: "m"), payload: [0xFF, 0xD8], qos: 1)
        // The ingress may publish requests but not results either.
        let ingress = try await connected(broker.configuration("ingress"))
        do {
            try await ingress.client.publish(Topics.result(job: "x"), payload: Array("forged".utf8), qos: 1)
            XCTFail("the ingress account could publish a result")
        } catch let MQTTError.publishRefused(_, code, _) {
            XCTAssertEqual(code, 135)
        }
        try await ingress.client.publish(Topics.requests(model: "m"), payload: Array("{}".utf8), qos: 1)
        // Nor on a device's request topic; only the store does, publishing a device's request again.
        do {
            try await ingress.client.publish(Topics.deviceRequests(device: "cam-a", model: "m"), payload: [0xFF, 0xD8], qos: 1)
            XCTFail("the ingress account could publish a device's request")
        } catch let MQTTError.publishRefused(_, code, _) {
            XCTAssertEqual(code, 135)
        }
        let store = try await connected(broker.configuration("store"))
        try await store.client.publish(Topics.deviceRequests(device: "cam-a", model: "m"), payload: [0xFF, 0xD8], qos: 1)
        await device.stop()
        await ingress.stop()
        await store.stop()
    }

    func testWrongPasswordAndAnonymousAreRefused() async throws {
        let broker = try start()
        for (version, expected) in [(MQTTProtocolVersion.v5, 135), (.v311, 5)] {
            let client = MQTTClient(try broker.configuration("cam-a", password: "not-the-password", version: version))
            do {
                try await client.connect()
                XCTFail("connected with a wrong password (\(version))")
            } catch let MQTTError.connectionRefused(code, reason) {
                XCTAssertEqual(code, expected, "CONNACK code (\(version)): \(reason)")
                XCTAssertTrue(reason.lowercased().contains("not authori"), reason)
            }
        }
        // No anonymous access on the authenticated listener…
        var anonymous = MQTTConfiguration(host: "127.0.0.1", port: broker.authPort, clientID: "anon-\(UUID().uuidString.prefix(6))")
        anonymous.connectTimeout = .seconds(5)
        do {
            try await MQTTClient(anonymous).connect()
            XCTFail("anonymous client accepted on the authenticated listener")
        } catch let MQTTError.connectionRefused(code, _) {
            XCTAssertEqual(code, 135)
        }
        // …only on the loopback one.
        anonymous.port = broker.openPort
        let local = MQTTClient(anonymous)
        try await local.connect()
        await local.disconnect()
    }

    func testTLSListener() async throws {
        let broker = try start(tls: true)
        let tlsPort = try XCTUnwrap(broker.tlsPort, "the shipped config has no TLS block to enable")
        var deviceConfig = try broker.configuration("cam-a")
        deviceConfig.port = tlsPort
        deviceConfig.tls = MQTTTLS(caFile: broker.caFile)
        var workerConfig = try broker.configuration("worker")
        workerConfig.port = tlsPort
        workerConfig.tls = MQTTTLS(caFile: broker.caFile)

        let worker = try await connected(workerConfig)
        let topic = Topics.deviceRequests(device: "cam-a", model: "m")
        try await worker.listen("$share/workers/" + Topics.allDeviceRequests)
        let device = try await connected(deviceConfig)
        try await device.client.publish(topic, payload: Array("over TLS".utf8), qos: 1)
        let got = try await worker.message(timeout: 5) { $0.topic == topic }
        XCTAssertEqual(got.map { String(decoding: $0.payload, as: UTF8.self) }, "over TLS")

        // Plain MQTT to the TLS port gets no CONNACK.
        var plain = try broker.configuration("cam-a")
        plain.port = tlsPort
        plain.connectTimeout = .seconds(3)
        do {
            try await MQTTClient(plain).connect()
            XCTFail("a plain connection to the TLS port succeeded")
        } catch {
            XCTAssertTrue(error is MQTTError, "\(error)")
        }
        // And TLS with a CA that did not sign the server's certificate is refused.
        var wrongCA = deviceConfig
        wrongCA.clientID += "-x"
        wrongCA.tls = MQTTTLS(caFile: "/etc/ssl/certs/ca-certificates.crt")
        wrongCA.connectTimeout = .seconds(3)
        if FileManager.default.fileExists(atPath: "/etc/ssl/certs/ca-certificates.crt") {
            do {
                try await MQTTClient(wrongCA).connect()
                XCTFail("TLS connection accepted a certificate from an untrusted CA")
            } catch {}
        }
        await device.stop()
        await worker.stop()
    }
}
