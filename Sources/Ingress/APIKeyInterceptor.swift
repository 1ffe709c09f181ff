import GRPCCore

/// Requires `authorization: Bearer <key>` metadata with one of the configured
/// API keys on every gRPC call (TF Serving's API on port 8500) but the health
/// service's, as ``APIKeyMiddleware`` does for HTTP; UNAUTHENTICATED otherwise.
struct APIKeyInterceptor: ServerInterceptor {
    let keys: [[UInt8]]

    init(keys: Set<String>) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        // Health probes carry no key.
        if context.descriptor.service.fullyQualifiedService == "grpc.health.v1.Health" { return try await next(request, context) }
        guard let header = request.metadata[stringValues: "authorization"].first(where: { _ in true }) else {
            throw RPCError(code: .unauthenticated, message: "missing API key: send the metadata `authorization: Bearer <key>`")
        }
        guard APIKeys.isBearer(header, oneOf: keys) else {
            throw RPCError(code: .unauthenticated, message: "invalid API key")
        }
        return try await next(request, context)
    }
}
