import Foundation
import XCTest

/// `conveyor`'s command line as a user meets it: each service lists only the options it
/// uses, and a bad value, from a flag or from the environment, stops it with an error that
/// names the flag or the variable and the value.
final class CommandLineTests: XCTestCase {
    private func conveyor(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try ProgramRun.run(Paths.binary, arguments,
                           environment: ServiceProcess.childEnvironment().merging(environment) { $1 }, timeout: 60)
    }

    func testEachServiceListsOnlyItsOwnOptions() throws {
        let store = try conveyor(["store", "--help"])
        XCTAssertEqual(store.status, 0, store.output)
        for option in ["--database", "--lease-seconds", "--broker", "--log-level"] {
            XCTAssertTrue(store.output.contains(option), "store --help lacks \(option):\n\(store.output)")
        }
        for option in ["--port", "--rate-limit", "--model", "--threads", "--api-keys-file", "--max-pixels"] {
            XCTAssertFalse(store.output.contains(option + " "), "store --help shows \(option):\n\(store.output)")
        }
        let ingress = try conveyor(["ingress", "--help"])
        for option in ["--port", "--rate-limit", "--model-name", "--api-keys-file", "--max-pixels"] {
            XCTAssertTrue(ingress.output.contains(option), "ingress --help lacks \(option):\n\(ingress.output)")
        }
        for option in ["--database", "--threads", "--labels", "--model "] {
            XCTAssertFalse(ingress.output.contains(option), "ingress --help shows \(option):\n\(ingress.output)")
        }
        let worker = try conveyor(["worker", "--help"])
        for option in ["--model", "--threads", "--heartbeat-seconds"] {
            XCTAssertTrue(worker.output.contains(option), "worker --help lacks \(option):\n\(worker.output)")
        }
        for option in ["--port", "--database", "--rate-limit"] {
            XCTAssertFalse(worker.output.contains(option + " "), "worker --help shows \(option):\n\(worker.output)")
        }
        // The device simulator spells the broker options as the services do.
        let device = try conveyor(["device", "--help"])
        for option in ["--broker", "--mqtt-username", "--mqtt-password-file", "--mqtt-ca"] {
            XCTAssertTrue(device.output.contains(option), "device --help lacks \(option):\n\(device.output)")
        }
    }

    func testAnInvalidValueStopsTheServiceNamingWhereItCameFrom() throws {
        let cases: [(arguments: [String], environment: [String: String], expected: String)] = [
            (["ingress"], ["CONVEYOR_PORT": "80a"], "CONVEYOR_PORT=80a"),
            (["ingress", "--port", "70000"], [:], "--port 70000"),
            (["ingress"], ["CONVEYOR_RATE_LIMIT": "fast"], "CONVEYOR_RATE_LIMIT=fast"),
            (["store"], ["CONVEYOR_LEASE_SECONDS": "-3"], "CONVEYOR_LEASE_SECONDS=-3"),
            (["store"], ["CONVEYOR_LOG_LEVEL": "loud"], "CONVEYOR_LOG_LEVEL=loud"),
            (["store", "--log-level", "loud"], [:], "--log-level loud"),
            (["worker", "--model", Paths.model], ["CONVEYOR_THREADS": "two"], "CONVEYOR_THREADS=two"),
            (["up", "--model", Paths.model], ["CONVEYOR_WORKERS": "0"], "CONVEYOR_WORKERS=0"),
        ]
        for (arguments, environment, expected) in cases {
            let run = try conveyor(arguments, environment: environment)
            XCTAssertNotEqual(run.status, 0, "\(arguments) \(environment) started:\n\(run.output)")
            XCTAssertTrue(run.output.contains(expected), "\(arguments) \(environment): the error does not name \(expected):\n\(run.output)")
        }
    }
}
