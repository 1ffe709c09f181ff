import ArgumentParser
import Foundation
import MQTT

/// How a service reaches the broker. Flags win over environment variables.
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker URL: mqtt://[user:pass@]host[:port] or mqtts://… (env CONVEYOR_BROKER; default mqtt://127.0.0.1:1883).")
    var broker: String?

    @Option(help: "MQTT username (env CONVEYOR_MQTT_USERNAME).")
    var mqttUsername: String?

    @Option(help: "MQTT password (env CONVEYOR_MQTT_PASSWORD; prefer --mqtt-password-file: a flag shows in `ps`).")
    var mqttPassword: String?

    @Option(help: "File whose first line is the MQTT password (env CONVEYOR_MQTT_PASSWORD_FILE).")
    var mqttPasswordFile: String?

    @Option(help: "CA certificate for mqtts:// (env CONVEYOR_MQTT_CA).")
    var mqttCA: String?

    @Option(help: "Client certificate (PEM) for brokers that require one (env CONVEYOR_MQTT_CERT).")
    var mqttCert: String?

    @Option(help: "Private key (PEM) of --mqtt-cert (env CONVEYOR_MQTT_KEY).")
    var mqttKey: String?

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
            throw ValidationError("bad broker URL \(MQTTConfiguration.redacting(url ?? brokerURL)): \(error)")
        }
        if let user = mqttUsername ?? Environment.string("CONVEYOR_MQTT_USERNAME") { config.username = user }
        if let pass = mqttPassword ?? Environment.string("CONVEYOR_MQTT_PASSWORD") { config.password = pass }
        if let file = mqttPasswordFile ?? Environment.string("CONVEYOR_MQTT_PASSWORD_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the MQTT password file \(file)")
            }
            config.password = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let ca = mqttCA ?? Environment.string("CONVEYOR_MQTT_CA") { config.tls = MQTTTLS(caFile: ca) }
        let cert = mqttCert ?? Environment.string("CONVEYOR_MQTT_CERT")
        let key = mqttKey ?? Environment.string("CONVEYOR_MQTT_KEY")
        if cert != nil || key != nil {
            guard cert != nil, key != nil else { throw ValidationError("--mqtt-cert and --mqtt-key go together") }
            var tls = config.tls ?? MQTTTLS(caFile: "")
            tls.certFile = cert
            tls.keyFile = key
            config.tls = tls
        }
        return config
    }
}
