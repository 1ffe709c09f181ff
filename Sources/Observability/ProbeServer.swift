import Hummingbird
import Logging
import ServiceLifecycle

/// A small HTTP listener for a service that has no HTTP API of its own (a
/// worker, the result store): ``ProbeRoutes`` (`/metrics`, `/health/live`,
/// `/health/ready`) and the book's `GET /health`, until graceful shutdown.
/// A port that cannot be bound is logged, not fatal: the service it watches
/// keeps running.
public struct ProbeServer: Service {
    public let host: String
    public let port: Int
    public let readiness: Readiness
    private let logger: Logger

    public init(host: String, port: Int, readiness: Readiness, logger: Logger) {
        self.host = host
        self.port = port
        self.readiness = readiness
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        router.add(middleware: HTTPMetricsMiddleware())
        router.get("/health") { _, _ in Readiness.json(["health": "ok"], status: .ok) }
        ProbeRoutes.add(to: router, readiness: readiness)
        let app = Application(router: router,
                              configuration: .init(address: .hostname(host, port: port), serverName: "conveyor"),
                              logger: logger)
        logger.info("metrics and health probes on http://\(host):\(port)")
        // Like any other listener: a port that cannot be bound is logged and the service runs on.
        do { try await app.run() } catch {
            logger.error("metrics and health probes not running on \(host):\(port): \(error)")
        }
    }
}
