import Hummingbird

/// The routes every service's HTTP listener answers, without an API key:
/// `GET /metrics` (Prometheus text), `GET /health/live`, `GET /health/ready`.
public enum ProbeRoutes {
    /// The paths, for routers that list their routes.
    public static let paths = ["/metrics", "/health/live", "/health/ready"]

    /// Adds the three routes to `router`.
    public static func add<Context: RequestContext>(to router: Router<Context>, readiness: Readiness) {
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: MetricsRegistry.text())))
        }
        router.get("/health/live") { _, _ in Readiness.liveResponse() }
        router.get("/health/ready") { _, _ in await readiness.response() }
    }
}
