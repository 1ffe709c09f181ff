import ArgumentParser
import Foundation
import Logging
import Spawn

/// A private mosquitto for `conveyor up`: loopback only, persistence on, in
/// the data folder. Started before the services, stopped after them.
final class BrokerProcess {
    let port: Int
    let directory: String
    private let logger: Logger
    private var process: Process?

    init(port: Int, directory: String, logger: Logger) throws {
        self.port = port
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.logger = logger
    }

    static func executable() -> String? {
        ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto", "/opt/homebrew/sbin/mosquitto"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func start() throws {
        guard let binary = Self.executable() else {
            throw ValidationError("mosquitto is not installed (make run installs it; or pass --broker URL)")
        }
        let config = (directory as NSString).appendingPathComponent("mosquitto.conf")
        var lines = [
            "# Written by conveyor up: a private broker on loopback.",
            "listener \(port) 127.0.0.1",
            "allow_anonymous true",
            // Persistence keeps the store's session and what is queued for it across a
            // restart. Accepted jobs do not depend on it (the ledger commits each before its
            // 202); device requests queued for an absent store do. Saving every 5 s rewrites
            // the whole database (images included) that often; see docs/reliability.md.
            "persistence true",
            "persistence_location \(directory)/",
            "autosave_interval 5",
            // Small messages (receipts, PUBACKs) go out at once, not after a delayed ACK.
            "set_tcp_nodelay true",
            "message_size_limit 16777216",
            "max_queued_messages 10000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if getuid() == 0 { lines.append("user root") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-c", config]
        try process.runWithDefaultSignals()
        self.process = process
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if !process.isRunning {
                throw ValidationError("mosquitto exited at start (is port \(port) in use? try --mqtt-port)")
            }
            if Self.accepts(port: port) {
                logger.info("private mosquitto (pid \(process.processIdentifier)) on 127.0.0.1:\(port), data in \(directory)")
                return
            }
            usleep(50_000)
        }
        stop()
        throw ValidationError("mosquitto did not open port \(port) within 5 s")
    }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        logger.info("private mosquitto stopped")
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
