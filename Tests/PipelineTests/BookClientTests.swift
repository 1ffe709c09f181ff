import Foundation
import XCTest

/// The book's synchronous client, making exactly the book's three calls, against
/// `conveyor up --model <the InceptionV3 weights file>`: the whole pipeline in one
/// process with its private mosquitto, as a new user starts it. Also checks that
/// `conveyor up` listens on loopback only unless `--host` says otherwise.
final class BookClientTests: XCTestCase {
    private var up: ServiceProcess?
    private var directory: URL?

    override func tearDown() async throws {
        if let up {
            if (testRun?.totalFailureCount ?? 1) > 0 { print(up.logTail(60)) }
            _ = up.stop(grace: 15)
        }
        if let directory { try? FileManager.default.removeItem(at: directory) }
        try await super.tearDown()
    }

    /// Starts `conveyor up` on free ports; returns (job API, REST, gRPC) ports once the
    /// worker's model is AVAILABLE through TF Serving's status call.
    private func startUp() async throws -> (http: Int, rest: Int, grpc: Int) {
        if let missing = Paths.missingPrerequisite() { throw XCTSkip(missing) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-up-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        let (http, rest, grpc, mqtt) = (try Ports.free(), try Ports.free(), try Ports.free(), try Ports.free())
        let process = ServiceProcess(
            name: "up",
            arguments: ["up", "--model", Paths.model, "--labels", Paths.labels, "--port", String(http),
                        "--rest-port", String(rest), "--grpc-port", String(grpc), "--mqtt-port", String(mqtt),
                        "--data-dir", directory.appendingPathComponent("data").path],
            logFile: directory.appendingPathComponent("up.log"))
        try process.start()
        up = process
        let client = HTTPClient(port: rest)
        let deadline = Date().addingTimeInterval(Pipeline.startTimeout)
        while Date() < deadline {
            XCTAssertTrue(process.isRunning, "conveyor up exited: \(process.logTail())")
            if !process.isRunning { break }
            if let reply = try? await client.get("/v1/models/inception_v3", timeout: 5), reply.status == 200,
               reply.text.contains("AVAILABLE") {
                return (http, rest, grpc)
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw PipelineError("conveyor up did not serve inception_v3 in time:\n\(process.logTail())")
    }

    func testTheBooksClientCallsWorkUnchangedAgainstConveyorUp() async throws {
        let ports = try await startUp()
        let venv = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/tf-serving-client-venv.sh").path, [], timeout: 900)
        XCTAssertEqual(venv.status, 0, "making the client venv failed:\n\(venv.output)")
        guard venv.status == 0, let python = venv.output.split(separator: "\n").last.map(String.init) else { return }
        let label = try XCTUnwrap(try TestImages.reference().first { $0.name == "cat" }?.top5Labels.first)
        let run = try ProgramRun.run(python, [
            Paths.repo.appendingPathComponent("Tests/TFServingClient/book_sync_client.py").path,
            "--image", Paths.sampleImage, "--label", label, "--address", "localhost",
            "--grpc-port", String(ports.grpc), "--rest-port", String(ports.rest),
        ], timeout: 300)
        XCTAssertEqual(run.status, 0, "book client:\n\(run.output)\n\(up?.logTail() ?? "")")
        XCTAssertEqual(run.output.split(separator: "\n").filter { $0.hasPrefix("FAIL") }, [], run.output)
        XCTAssertEqual(run.output.split(separator: "\n").filter { $0.hasPrefix("ok") }.count, 6, run.output)
    }

    /// Without `--host`, every port `conveyor up` opens answers on 127.0.0.1 and nowhere
    /// else: a connection to this machine's other addresses is refused.
    func testConveyorUpListensOnLoopbackByDefault() async throws {
        let ports = try await startUp()
        let log = try XCTUnwrap(up?.log)
        XCTAssertTrue(log.contains("HTTP on 127.0.0.1:\(ports.http)"), log)
        let health = try await HTTPClient(port: ports.http).get("/health")
        XCTAssertEqual(health.status, 200)
        let addresses = try ProgramRun.run("/usr/bin/hostname", ["-I"]).output
            .split(whereSeparator: \.isWhitespace).map(String.init).filter { $0.contains(".") && !$0.hasPrefix("127.") }
        guard !addresses.isEmpty else { throw XCTSkip("this machine has no non-loopback IPv4 address to try") }
        for address in addresses {
            for port in [ports.http, ports.rest, ports.grpc] {
                XCTAssertFalse(Self.accepts(address, port), "\(address):\(port) accepted a connection")
            }
        }
    }

    /// Whether a TCP connection to `address:port` succeeds within a second.
    private static func accepts(_ address: String, _ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return false }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }
}
