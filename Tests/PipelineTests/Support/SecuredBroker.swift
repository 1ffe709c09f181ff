import Foundation
import MQTT
import TestBroker

/// The shipped broker setup for a test: accounts made by the shipped
/// `scripts/make-credentials.sh` in a temporary directory, and a mosquitto running the
/// shipped `mosquitto.conf` (with the roles of `mosquitto-roles.json`, through mosquitto's
/// dynamic-security plugin) with its listeners moved to free loopback
/// ports (optionally with the TLS block enabled and a throwaway CA and server certificate).
final class SecuredBroker: @unchecked Sendable {
    // @unchecked Sendable: immutable after init.
    let directory: URL
    let broker: MosquittoBroker
    let devices: [String]
    let tls: Bool

    /// Makes the accounts (ingress, worker, store and `devices`) and starts the broker.
    init(devices: [String], tls: Bool = false) throws {
        self.devices = devices
        self.tls = tls
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-secrets-\(UUID().uuidString.prefix(8))", isDirectory: true)
        var arguments = ["--dir", directory.path]
        if tls { arguments += ["--tls", "127.0.0.1,localhost"] }
        let (status, output) = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/make-credentials.sh").path, arguments + devices)
        guard status == 0 else { throw PipelineError("make-credentials.sh failed (\(status)): \(output)") }
        let configuration = try String(contentsOf: Paths.repo.appendingPathComponent("mosquitto.conf"), encoding: .utf8)
        broker = try MosquittoBroker(
            adapting: configuration,
            files: [
                "/mosquitto/config/dynamic-security.json": directory.appendingPathComponent("dynamic-security.json").path,
                MosquittoBroker.shippedDynamicSecurityPlugin: try MosquittoBroker.dynamicSecurityPlugin(),
                "/mosquitto/certs/": directory.appendingPathComponent("certs").path + "/",
            ],
            uncommenting: tls ? ["#tls "] : [])
    }

    deinit {
        broker.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The anonymous loopback listener (shipped as 1883).
    var openPort: Int { broker.listenerPorts[1883]! }
    /// The authenticated listener (shipped as 1884).
    var authPort: Int { broker.listenerPorts[1884]! }
    /// The TLS listener (shipped, commented out, as 8883).
    var tlsPort: Int? { broker.listenerPorts[8883] }
    var caFile: String { directory.appendingPathComponent("certs/ca.crt").path }

    func passwordFile(_ account: String) -> String { directory.appendingPathComponent("\(account).password").path }

    func password(_ account: String) throws -> String {
        let text = try String(contentsOfFile: passwordFile(account), encoding: .utf8)
        return String(text.split(separator: "\n").first ?? "")
    }

    /// The API key the script made for the ingress.
    func apiKey() throws -> String {
        let text = try String(contentsOf: directory.appendingPathComponent("api-keys"), encoding: .utf8)
        guard let key = text.split(separator: "\n").first(where: { !$0.hasPrefix("#") }) else { throw PipelineError("no API key") }
        return String(key)
    }
    var apiKeysFile: String { directory.appendingPathComponent("api-keys").path }

    /// `--mqtt-username/--mqtt-password-file` for a service role.
    func serviceArguments(_ role: String) -> [String] {
        ["--mqtt-username", role, "--mqtt-password-file", passwordFile(role)]
    }

    /// A client configuration for `account` on the authenticated listener. A device's
    /// client id is its account name (the broker binds it); a service's is unique.
    func configuration(_ account: String, password: String? = nil, version: MQTTProtocolVersion = .v5,
                       clientID: String? = nil) throws -> MQTTConfiguration {
        let isDevice = devices.contains(account)
        var config = MQTTConfiguration(host: "127.0.0.1", port: authPort,
                                       clientID: clientID ?? (isDevice ? account : "\(account)-\(UUID().uuidString.prefix(6))"),
                                       username: account, password: try password ?? self.password(account),
                                       protocolVersion: version)
        config.connectTimeout = .seconds(5)
        config.operationTimeout = .seconds(10)
        return config
    }

}
