import ArgumentParser
import Observability
import ServiceLifecycle

/// `--otel-endpoint`: where spans go (OTLP/HTTP), for every long-running command.
struct TracingOptions: ParsableArguments {
    @Option(help: "Base URL of an OTLP/HTTP collector, e.g. http://collector:4318; spans go to URL/v1/traces (env OTEL_EXPORTER_OTLP_ENDPOINT; default: no export).")
    var otelEndpoint: String?

    /// Bootstraps tracing for `service`; the exporter to run beside the services, if any.
    func exporter(service: String) throws -> (any Service)? {
        try TraceExport.bootstrap(service: service, endpoint: otelEndpoint)
    }
}
