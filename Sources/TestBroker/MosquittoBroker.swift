import Foundation
import Spawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private mosquitto broker for tests: `/usr/sbin/mosquitto` on a free loopback port,
/// with its configuration, log and persistence in a fresh temporary directory.
///
/// ```swift
/// let broker = try MosquittoBroker()
/// try broker.start()
/// defer { broker.stop() }
/// let config = MQTTConfiguration(port: broker.port, clientID: "test")
/// ```
///
/// The port is kept across `stop()`/`start()`, so `restart()` brings the broker back where
/// clients expect it. The directory is removed when the object goes away.
public final class MosquittoBroker: @unchecked Sendable {
    /// Why the broker could not be set up or started.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The loopback port the broker listens on (127.0.0.1).
    public let port: Int
    /// The temporary directory holding `mosquitto.conf`, `mosquitto.log` and persistence files.
    public let directory: URL
    /// The configuration file.
    public let configFile: URL
    /// Where the broker's stdout and stderr go.
    public let logFile: URL

    /// Every listener's loopback port, by the port the configuration named (for a broker made
    /// with `init(adapting:files:)`); `[port: port]` otherwise.
    public let listenerPorts: [Int: Int]

    private let executable = "/usr/sbin/mosquitto"
    private let lock = NSLock()
    private var process: Process?

    /// Writes the configuration: `listener PORT 127.0.0.1`, `allow_anonymous true` (unless
    /// `configLines` set `allow_anonymous` themselves), `user root` when running as root (so
    /// mosquitto does not drop to a user that cannot read the directory), persistence in the
    /// directory if asked, then `configLines`.
    public init(configLines: [String] = [], persistence: Bool = false) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw StartError(description: "\(executable) not found: apt-get install mosquitto")
        }
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mosquitto-\(UUID().uuidString)", isDirectory: true)
        configFile = directory.appendingPathComponent("mosquitto.conf")
        logFile = directory.appendingPathComponent("mosquitto.log")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Self.freePort()

        var lines = ["listener \(port) 127.0.0.1"]
        if !configLines.contains(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("allow_anonymous") }) {
            lines.append("allow_anonymous true")
        }
        if getuid() == 0 {
            lines.append("user root")
        }
        // As the shipped mosquitto.conf: small messages go out at once (no Nagle delay).
        lines.append("set_tcp_nodelay true")
        if persistence {
            lines.append("persistence true")
            lines.append("persistence_location \(directory.path)/")
        }
        lines.append("log_dest stderr")
        lines.append(contentsOf: configLines)
        try (lines.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        listenerPorts = [port: port]
    }

    /// Runs a given configuration (e.g. the shipped `mosquitto.conf`) with only what a test
    /// must change: every `listener N [address]` line moves to a free port on 127.0.0.1
    /// (see ``listenerPorts``; ``port`` is the first listener's), each key of `files` (a path
    /// the configuration names, such as `/mosquitto/config/passwd`) is replaced by its value,
    /// `/mosquitto/data/` by the temporary directory, and `user root` is added when running
    /// as root. Lines starting with one of `uncommenting` lose that prefix first (to enable a
    /// commented block, e.g. `"#tls "`).
    public init(adapting configuration: String, files: [String: String] = [:], uncommenting: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw StartError(description: "\(executable) not found: apt-get install mosquitto")
        }
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mosquitto-\(UUID().uuidString)", isDirectory: true)
        configFile = directory.appendingPathComponent("mosquitto.conf")
        logFile = directory.appendingPathComponent("mosquitto.log")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ports: [Int: Int] = [:]
        var first: Int?
        var lines: [String] = []
        for var line in configuration.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let prefix = uncommenting.first(where: { line.hasPrefix($0) }) { line = String(line.dropFirst(prefix.count)) }
            let words = line.split(separator: " ")
            if words.count >= 2, words[0] == "listener", let original = Int(words[1]) {
                var free = try Self.freePort()
                while ports.values.contains(free) { free = try Self.freePort() }
                ports[original] = free
                if first == nil { first = free }
                line = "listener \(free) 127.0.0.1"
            }
            for (from, to) in files { line = line.replacingOccurrences(of: from, with: to) }
            line = line.replacingOccurrences(of: "/mosquitto/data/", with: directory.path + "/")
            lines.append(line)
        }
        guard let first else { throw StartError(description: "the configuration has no listener line") }
        if getuid() == 0 { lines.append("user root") }
        try (lines.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        port = first
        listenerPorts = ports
    }

    /// The dynamic-security plugin's path as the shipped `mosquitto.conf` names it (the
    /// eclipse-mosquitto image's).
    public static let shippedDynamicSecurityPlugin = "/usr/lib/mosquitto_dynamic_security.so"

    /// Where this machine's mosquitto package installed the dynamic-security plugin.
    public static func dynamicSecurityPlugin() throws -> String {
        let candidates = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]
            .map { $0 + "/mosquitto_dynamic_security.so" }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw StartError(description: "mosquitto_dynamic_security.so not found in \(candidates): apt-get install mosquitto")
        }
        return found
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The broker's process ID while it runs.
    public var pid: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let process, process.isRunning else { return nil }
        return process.processIdentifier
    }

    /// What the broker has logged so far.
    public var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Starts the broker and waits (at most 5 s) until its port accepts TCP connections.
    /// Does nothing if it is already running. Throws with the broker's log if it exits or
    /// does not listen in time.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        if let process, process.isRunning {
            return
        }
        let output = try FileHandle(forWritingTo: logFile)
        defer { try? output.close() }
        output.seekToEndOfFile()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", configFile.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.runWithDefaultSignals()
        self.process = process

        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if !process.isRunning {
                self.process = nil
                throw StartError(description: "mosquitto exited with status \(process.terminationStatus):\n\(log)")
            }
            if listenerPorts.values.allSatisfy({ Self.accepts(port: $0) }) {
                return
            }
            usleep(20_000)
        }
        Self.terminate(process)
        self.process = nil
        throw StartError(description: "mosquitto did not listen on port \(port) within 5 s:\n\(log)")
    }

    /// Stops the broker: SIGTERM, then SIGKILL if it has not exited after 3 s. Keeps the port
    /// and the directory, so `start()` can bring it back.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        if let process {
            Self.terminate(process)
        }
        process = nil
    }

    /// Kills the broker with SIGKILL, as a crash or power loss would: it writes nothing
    /// more to its persistence file. Keeps the port and the directory, so `start()` can
    /// bring it back.
    public func kill() {
        lock.lock()
        defer { lock.unlock() }
        if let process, process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            _ = Self.waitForExit(process, seconds: 3)
        }
        process = nil
    }

    /// Stops and starts the broker on the same port.
    public func restart() throws {
        stop()
        try start()
    }

    // MARK: Helpers

    private static func terminate(_ process: Process) {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        Glibc.kill(pid, SIGTERM)
        if waitForExit(process, seconds: 3) {
            return
        }
        Glibc.kill(pid, SIGKILL)
        _ = waitForExit(process, seconds: 3)
    }

    private static func waitForExit(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline {
            usleep(10_000)
        }
        return !process.isRunning
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return address
    }

    private static func streamSocket() -> Int32 {
        #if canImport(Glibc)
        return socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        return socket(AF_INET, SOCK_STREAM, 0)
        #endif
    }

    /// A port that was free a moment ago: bind to port 0 on 127.0.0.1, read it, close.
    private static func freePort() throws -> Int {
        let fd = streamSocket()
        guard fd >= 0 else { throw StartError(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw StartError(description: "bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &length)
            }
        }
        guard named == 0 else { throw StartError(description: "getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    private static func accepts(port: Int) -> Bool {
        let fd = streamSocket()
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return connected == 0
    }
}
