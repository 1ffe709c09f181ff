import GRPCCore
import Observability
import TFServingGRPC

/// gRPC's standard health service (`grpc.health.v1.Health`) on TF Serving's
/// gRPC port, for load balancers, Kubernetes' gRPC probes and
/// `grpc_health_probe`. SERVING when the ingress is ready (the checks of
/// `GET /health/ready`), NOT_SERVING otherwise, for the server as a whole
/// (`""`) and for each service it runs; NOT_FOUND for any other service name.
/// No API key is needed.
struct HealthServiceHandler: Grpc_Health_V1_Health.SimpleServiceProtocol {
    /// The services a health check may name besides `""`.
    static let services: Set<String> = [
        "", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService", "grpc.health.v1.Health",
    ]

    let readiness: Readiness
    /// How often Watch looks at the readiness again.
    var watchInterval: Duration = .seconds(1)

    func check(request: Grpc_Health_V1_HealthCheckRequest,
               context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(request.service)")
        }
        return await status()
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest,
               response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
               context: ServerContext) async throws {
        guard Self.services.contains(request.service) else {
            var unknown = Grpc_Health_V1_HealthCheckResponse()
            unknown.status = .serviceUnknown
            try await response.write(unknown)
            return
        }
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
        while !Task.isCancelled {
            let now = await status()
            if now.status != last {
                try await response.write(now)
                last = now.status
            }
            try await Task.sleep(for: watchInterval)
        }
    }

    private func status() async -> Grpc_Health_V1_HealthCheckResponse {
        var answer = Grpc_Health_V1_HealthCheckResponse()
        answer.status = await readiness.evaluate().ready ? .serving : .notServing
        return answer
    }
}
