import ArgumentParser
import Logging
import Observability
import ServiceLifecycle

/// `--otel-endpoint`: where spans go (OTLP/HTTP), for every long-running command.
struct TracingOptions: ParsableArguments {
    @Option(help: "Base URL of an OTLP/HTTP collector, e.g. http://collector:4318; spans go to URL/v1/traces (env OTEL_EXPORTER_OTLP_ENDPOINT; default: no export).")
    var otelEndpoint: String?

    /// Bootstraps tracing for `service`, then runs `services` until SIGTERM or
    /// SIGINT. The span exporter, if there is one, runs first in the group, so
    /// a graceful stop ends it last, after the spans of the work in hand.
    func run(_ services: [any Service], as service: String, logger: Logger) async throws {
        let exporter = try TraceExport.bootstrap(service: service, endpoint: otelEndpoint)
        try await ServiceGroup(services: (exporter.map { [$0] } ?? []) + services,
                               gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
