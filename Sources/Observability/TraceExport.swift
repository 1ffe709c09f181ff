import Foundation
import Logging
import OTel
import ServiceLifecycle

/// Exports spans over OTLP/HTTP (swift-otel) when an endpoint is configured:
/// `--otel-endpoint URL` (a collector's base URL, e.g. `http://collector:4318`;
/// spans go to `URL/v1/traces`), or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
/// / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. Other standard variables apply
/// (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`, `OTEL_SERVICE_NAME`,
/// `OTEL_BSP_SCHEDULE_DELAY`, …). Without an endpoint nothing is bootstrapped:
/// spans are no-ops and nothing is exported.
///
/// Only traces: metrics go to Prometheus (``MetricsRegistry``), logs to
/// standard error. Propagation is W3C trace context (`traceparent`).
public enum TraceExport {
    /// Bootstraps tracing for `service` (its OpenTelemetry `service.name`) and
    /// returns the exporter's service, to run beside the others; `nil` when no
    /// endpoint is configured. Call once per process.
    public static func bootstrap(service: String, endpoint: String?) throws -> (any Service)? {
        let environment = ProcessInfo.processInfo.environment
        let configured = endpoint ?? environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        guard let configured, !configured.isEmpty else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = service
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        if let endpoint {
            let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            configuration.traces.otlpExporter.endpoint = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
        }
        return try OTel.bootstrap(configuration: configuration)
    }

    /// Adds `trace_id` and `span_id` of the current span to every log line
    /// written inside it, and the current job's `job_id` (``JobLogContext``).
    public static var loggingMetadataProvider: Logger.MetadataProvider {
        .multiplex([OTel.makeLoggingMetadataProvider(), JobLogContext.metadataProvider]) ?? JobLogContext.metadataProvider
    }
}
