import Foundation
import Spawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One `conveyor` service (or any program) run as a child process, with stdout and stderr
/// going to a log file. Stopped by PID: SIGTERM, then SIGKILL if it has not exited in time.
/// Every started process is also registered with ``ProcessRegistry``, which kills whatever
/// is still running when the test process exits.
final class ServiceProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only touched with `lock` held; the rest is immutable.
    let name: String
    let executable: String
    let arguments: [String]
    let logFile: URL
    let environment: [String: String]

    private let lock = NSLock()
    private var process: Process?

    init(name: String, executable: String = Paths.binary, arguments: [String], logFile: URL,
         environment: [String: String] = ServiceProcess.childEnvironment()) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.logFile = logFile
        self.environment = environment
    }

    deinit {
        stop()
    }

    /// The test's environment without `CONVEYOR_*` settings (which the services would read
    /// as defaults), except the BLAS kernel choice, and without `OTEL_*` (no test exports
    /// spans unless it asks).
    static func childEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            (!key.hasPrefix("CONVEYOR_") || key == "CONVEYOR_BLAS_KERNEL") && !key.hasPrefix("OTEL_")
        }
    }

    /// The command line, for messages.
    var commandLine: String { ([executable] + arguments).joined(separator: " ") }

    /// Starts the process; the log file is appended to (a restart keeps the earlier output).
    func start() throws {
        lock.lock()
        defer { lock.unlock() }
        if let process, process.isRunning { return }
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw PipelineError("\(executable) is missing or not executable: build it first (`swift build --build-tests`, or set CONVEYOR_BIN)")
        }
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let output = try FileHandle(forWritingTo: logFile)
        defer { try? output.close() }
        output.seekToEndOfFile()
        output.write(Data("==== \(Date()) starting \(name): \(commandLine)\n".utf8))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.runWithDefaultSignals()
        self.process = process
        ProcessRegistry.shared.add(process.processIdentifier)
    }

    /// The process ID while it runs.
    var pid: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let process, process.isRunning else { return nil }
        return process.processIdentifier
    }

    var isRunning: Bool { pid != nil }

    /// How the last run ended: "exit N" or "signal N"; nil while running or never started.
    var exitDescription: String? {
        lock.lock()
        defer { lock.unlock() }
        guard let process, !process.isRunning else { return nil }
        let kind = process.terminationReason == .exit ? "exit" : "signal"
        return "\(kind) \(process.terminationStatus)"
    }

    /// Everything logged so far.
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The last `lines` lines of the log, for failure messages.
    func logTail(_ lines: Int = 25) -> String {
        let all = log.split(separator: "\n", omittingEmptySubsequences: false)
        return "---- \(name) (\(exitDescription ?? (isRunning ? "running" : "not started"))), \(logFile.path):\n"
            + all.suffix(lines).joined(separator: "\n")
    }

    /// Waits until the log has a line containing `text` (after `offset` characters), failing
    /// at once if the process exits first.
    func waitForLog(_ text: String, after offset: Int = 0, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let current = log
            if current.count > offset, current.dropFirst(offset).contains(text) { return }
            if !isRunning {
                throw PipelineError("\(name) exited (\(exitDescription ?? "?")) before logging \"\(text)\"\n\(logTail())")
            }
            if Date() >= deadline {
                throw PipelineError("\(name) did not log \"\(text)\" within \(Int(timeout)) s\n\(logTail())")
            }
            usleep(100_000)
        }
    }

    /// Sends SIGTERM and waits up to `grace` seconds, then SIGKILL. Returns how it ended.
    @discardableResult
    func stop(grace: TimeInterval = 10) -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard let process else { return nil }
        if process.isRunning {
            let pid = process.processIdentifier
            kill(pid, SIGTERM)
            if !Self.waitForExit(process, seconds: grace) {
                kill(pid, SIGKILL)
                _ = Self.waitForExit(process, seconds: 10)
            }
            ProcessRegistry.shared.remove(pid)
        }
        let kind = process.terminationReason == .exit ? "exit" : "signal"
        return process.isRunning ? nil : "\(kind) \(process.terminationStatus)"
    }

    /// SIGKILL at once (a crash, as far as the rest of the pipeline can tell).
    func killHard() {
        lock.lock()
        defer { lock.unlock() }
        guard let process, process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        _ = Self.waitForExit(process, seconds: 10)
        ProcessRegistry.shared.remove(pid)
    }

    // MARK: - Helpers

    private static func waitForExit(_ process: Process, seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }
}

/// The PIDs of running children, killed (SIGKILL) when the test process exits, so that a
/// test run that ends without its tearDowns leaves no worker burning the shared cores.
final class ProcessRegistry: @unchecked Sendable {
    // @unchecked Sendable: `pids` is only touched with `lock` held.
    static let shared: ProcessRegistry = {
        let registry = ProcessRegistry()
        atexit { ProcessRegistry.shared.killAll() }
        return registry
    }()

    private let lock = NSLock()
    private var pids: Set<Int32> = []

    func add(_ pid: Int32) { lock.lock(); pids.insert(pid); lock.unlock() }
    func remove(_ pid: Int32) { lock.lock(); pids.remove(pid); lock.unlock() }

    func killAll() {
        lock.lock()
        let all = pids
        pids = []
        lock.unlock()
        for pid in all { kill(pid, SIGKILL) }
    }
}

/// Loopback ports.
enum Ports {
    /// A TCP port that was free a moment ago: bind 127.0.0.1:0, read the port, close.
    static func free() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw PipelineError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw PipelineError("bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw PipelineError("getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
