import ArgumentParser
import Foundation
import MQTT

/// How a service reaches the broker. Flags win over environment variables.
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker URL: mqtt://[user:pass@]host[:port] or mqtts://… (env CONVEYOR_BROKER; default mqtt://127.0.0.1:1883).")
    var broker: String?

    @Option(help: "MQTT username (env CONVEYOR_MQTT_USERNAME).")
    var mqttUsername: String?

    @Option(help: "MQTT password (env CONVEYOR_MQTT_PASSWORD).")
    var mqttPassword: String?

    @Option(help: "CA certificate for mqtts:// (env CONVEYOR_MQTT_CA).")
    var mqttCA: String?

    @Option(help: "MQTT client id (default: ROLE-HOST-PID; the store: conveyor-store, fixed so that its persistent session survives restarts).")
    var clientID: String?

    var brokerURL: String {
        broker ?? Environment.string("CONVEYOR_BROKER") ?? "mqtt://127.0.0.1:1883"
    }

    /// The broker configuration for one role ("ingress", "worker", "store").
    func configuration(role: String, url: String? = nil) throws -> MQTTConfiguration {
        let id = clientID ?? (role == "store" ? "conveyor-store"
            : "\(role)-\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
        var config: MQTTConfiguration
        do { config = try MQTTConfiguration(url: url ?? brokerURL, clientID: id) } catch {
            throw ValidationError("bad broker URL \(url ?? brokerURL): \(error)")
        }
        if let user = mqttUsername ?? Environment.string("CONVEYOR_MQTT_USERNAME") { config.username = user }
        if let pass = mqttPassword ?? Environment.string("CONVEYOR_MQTT_PASSWORD") { config.password = pass }
        if let ca = mqttCA ?? Environment.string("CONVEYOR_MQTT_CA") { config.tls = MQTTTLS(caFile: ca) }
        return config
    }
}

/// Reading settings from the environment.
enum Environment {
    static func string(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
    static func int(_ name: String) -> Int? { string(name).flatMap { Int($0) } }
    static func double(_ name: String) -> Double? { string(name).flatMap { Double($0) } }
}
