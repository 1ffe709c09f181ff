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

    /// Runs every check (one after another; each is cheap).
    public func evaluate() async -> (ready: Bool, failures: [String: String], body: [String: Any]) {
        var results: [String: String] = [:]
        var failures: [String: String] = [:]
        for check in checks {
            if let failure = await check.test() {
                failures[check.name] = failure
                results[check.name] = failure
            } else {
                results[check.name] = "ok"
            }
        }
        return (failures.isEmpty, failures, ["status": failures.isEmpty ? "ready" : "not ready", "checks": results])
    }

    /// The `/health/ready` answer.
    public func response() async -> Response {
        let (ready, _, body) = await evaluate()
        return Self.json(body, status: ready ? .ok : .serviceUnavailable)
    }

    /// The `/health/live` answer: the process runs and answers HTTP.
    public static func liveResponse() -> Response {
        json(["status": "live"], status: .ok)
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
