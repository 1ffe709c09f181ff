import Foundation

/// Runs a program to its end for a test (killed after `timeout` seconds): its exit status and
/// its standard output and error together. The output goes through a file, so a chatty
/// program (pip, schemathesis) never blocks on a full pipe; the child is registered with
/// ``ProcessRegistry`` so an aborted test run still stops it.
enum ProgramRun {
    static func run(_ program: String, _ arguments: [String], in directory: URL? = nil,
                    environment: [String: String]? = nil, timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-run-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close(); try? FileManager.default.removeItem(at: log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        ProcessRegistry.shared.add(process.processIdentifier)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        ProcessRegistry.shared.remove(process.processIdentifier)
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if Date() >= deadline { return (-1, text + "\n(killed after \(Int(timeout)) s)") }
        return (process.terminationStatus, text)
    }
}
