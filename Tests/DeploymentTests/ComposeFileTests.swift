import Foundation
import XCTest

/// compose.yaml and mosquitto.conf are validated by the real tools (there is no
/// Docker engine on the build machines, only `docker-compose config`).
final class ComposeFileTests: XCTestCase {
    private let repo = Tool.repo

    func testComposeFileIsValid() throws {
        let quiet = try Tool.run("docker-compose", ["-f", "compose.yaml", "config", "-q"], in: repo)
        XCTAssertEqual(quiet.status, 0, "docker-compose config -q: \(quiet.output)")
        let full = try Tool.run("docker-compose", ["-f", "compose.yaml", "config", "--services"], in: repo)
        XCTAssertEqual(Set(full.output.split(separator: "\n").map(String.init)), ["mosquitto", "store", "worker", "ingress"])
    }

    func testComposeMountsTheShippedBrokerConfig() throws {
        let text = try String(contentsOf: repo.appendingPathComponent("compose.yaml"), encoding: .utf8)
        XCTAssertTrue(text.contains("./mosquitto.conf:/mosquitto/config/mosquitto.conf"))
        XCTAssertTrue(text.contains("./secrets/dynamic-security.json:/mosquitto/config/dynamic-security.json"))
    }

    /// mosquitto refuses a config with an unknown or malformed option at start;
    /// run the shipped file (its listeners on random loopback ports, its paths moved to
    /// a temp folder, accounts and roles made by scripts/make-credentials.sh, the plugin at
    /// this machine's path) for a moment.
    func testShippedMosquittoConfigStarts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var text = try String(contentsOf: repo.appendingPathComponent("mosquitto.conf"), encoding: .utf8)
        let port = 20000 + Int.random(in: 0..<20000)
        let credentials = try Tool.run(repo.appendingPathComponent("scripts/make-credentials.sh").path,
                                  ["--dir", dir.appendingPathComponent("secrets").path, "cam-1"], in: repo)
        XCTAssertEqual(credentials.status, 0, credentials.output)
        let plugin = try XCTUnwrap(["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
            .map { $0 + "/mosquitto_dynamic_security.so" }.first { FileManager.default.fileExists(atPath: $0) },
            "mosquitto's dynamic-security plugin is not installed")
        XCTAssertTrue(text.contains("\nlistener 1883 127.0.0.1\n") && text.contains("\nlistener 1884\n"), "listeners moved?")
        text = text.replacingOccurrences(of: "\nlistener 1883 127.0.0.1\n", with: "\nlistener \(port) 127.0.0.1\n")
            .replacingOccurrences(of: "\nlistener 1884\n", with: "\nlistener \(port + 1) 127.0.0.1\n")
            .replacingOccurrences(of: "/mosquitto/data/", with: dir.path + "/")
            .replacingOccurrences(of: "/mosquitto/config/dynamic-security.json",
                                  with: dir.appendingPathComponent("secrets/dynamic-security.json").path)
            .replacingOccurrences(of: "/usr/lib/mosquitto_dynamic_security.so", with: plugin)
        if getuid() == 0 { text += "\nuser root\n" }
        let conf = dir.appendingPathComponent("mosquitto.conf")
        try text.write(to: conf, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        process.arguments = ["-c", conf.path]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        Thread.sleep(forTimeInterval: 1)
        let alive = process.isRunning
        if alive { process.terminate() }
        process.waitUntilExit()
        let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(alive, "mosquitto exited with the shipped config: \(log)")
    }
}
