import ArgumentParser
import Logging
import Observability

/// `--metrics-port` and `--metrics-host`: the HTTP listener of a worker or
/// the store for `/metrics`, `/health/live` and `/health/ready`.
struct ProbeOptions: ParsableArguments {
    @Option(help: "Port for /metrics, /health/live and /health/ready (env CONVEYOR_METRICS_PORT; 0 = none; default: the store 9102, a worker none, since several may share a host).")
    var metricsPort: Int?

    @Option(help: "Address the metrics and probe listener binds (env CONVEYOR_METRICS_HOST; default 127.0.0.1; 0.0.0.0 for every interface).")
    var metricsHost: String?

    func validate() throws {
        _ = try Setting.port(metricsPort, "metrics-port", env: "CONVEYOR_METRICS_PORT", allowZero: true)
    }

    /// The listener, unless the port (or `defaultPort`, when none is given) is 0.
    func server(defaultPort: Int, readiness: Readiness, logger: Logger) throws -> ProbeServer? {
        let port = try Setting.port(metricsPort, "metrics-port", env: "CONVEYOR_METRICS_PORT", allowZero: true) ?? defaultPort
        guard port > 0 else { return nil }
        return ProbeServer(host: Setting.string(metricsHost, env: "CONVEYOR_METRICS_HOST") ?? "127.0.0.1", port: port,
                           readiness: readiness, logger: logger)
    }
}
