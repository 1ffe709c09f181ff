import CoreMetrics
import Prometheus
import Synchronization

/// The process's metrics: swift-metrics bootstrapped onto one Prometheus
/// registry, rendered as Prometheus text for `GET /metrics`.
///
/// ``bootstrap()`` once, early in `main` (a second call does nothing); until
/// then swift-metrics records nothing and ``text()`` shows only the process
/// metrics. Every metric is a plain swift-metrics `Counter`, `Gauge`,
/// `Recorder` or `Timer` in the code that counts it; see docs/observability.md
/// for the list.
public enum MetricsRegistry {
    /// The registry every metric of this process goes to.
    public static let registry = PrometheusCollectorRegistry()

    /// Histogram buckets for job and inference times: 1 ms to 60 s.
    public static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    private static let bootstrapped = Mutex(false)

    /// Points swift-metrics at ``registry`` (once per process).
    public static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            done = true
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = latencyBuckets
            MetricsSystem.bootstrap(factory)
        }
    }

    /// Every metric in Prometheus's text format, the process's memory and CPU
    /// time read just before.
    public static func text() -> String {
        ProcessMetrics.shared.update()
        return registry.emitToString()
    }
}
