import Foundation
import Hummingbird

/// What `GET /health/ready` checks: named checks, each answering `nil` when
/// it passes or why it fails. The answer is 200 `{"status": "ready",
/// "checks": {"broker": "ok", …}}` when all pass, else 503 with
/// `"status": "not ready"` and each failing check's reason in place of `"ok"`.
public struct Readiness: Sendable {
    /// One check: its name and the test (`nil`: passes).
    public struct Check: Sendable {
        public var name: String
        public var test: @Sendable () async -> String?

        public init(_ name: String, _ test: @escaping @Sendable () async -> String?) {
            self.name = name
            self.test = test
        }
    }

    /// The `broker` check every service has: its MQTT client is connected.
    public static func broker(connected: @escaping @Sendable () -> Bool) -> Check {
        Check("broker") { connected() ? nil : "not connected to the broker" }
    }

    public var checks: [Check]

    public init(_ checks: [Check]) {
        self.checks = checks
    }

    /// The outcome of every check: the `/health/ready` body.
    public struct Report: Codable, Sendable, Equatable {
        /// `ready` or `not ready`.
        public var status: String
        /// Each check's name, and `ok` or why it fails.
        public var checks: [String: String]

        /// Whether every check passed.
        public var ready: Bool { status == "ready" }

        public init(status: String, checks: [String: String]) {
            self.status = status
            self.checks = checks
        }
    }

    /// Runs every check (one after another; each is cheap).
    public func evaluate() async -> Report {
        var results: [String: String] = [:]
        var ready = true
        for check in checks {
            if let failure = await check.test() {
                results[check.name] = failure
                ready = false
            } else {
                results[check.name] = "ok"
            }
        }
        return Report(status: ready ? "ready" : "not ready", checks: results)
    }

    /// The `/health/ready` answer.
    public func response() async -> Response {
        let report = await evaluate()
        return Self.json(report, status: report.ready ? .ok : .serviceUnavailable)
    }

    /// The `/health/live` answer: the process runs and answers HTTP.
    public static func liveResponse() -> Response {
        json(["status": "live"], status: .ok)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
