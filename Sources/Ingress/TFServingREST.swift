import Foundation
import Hummingbird
import Logging
import Observability
import TFServing
import Tracing

/// TF Serving's REST API (`/v1/models/…`, usually on port 8501) as a
/// Hummingbird responder. Paths are matched the way TF Serving matches them
/// (see ``TFServing/RESTPath``); every answer is JSON, errors as
/// `{"error": "…"}` with TF Serving's HTTP status for the error's code.
struct TFServingREST: Sendable {
    let frontend: TFServingFrontend
    let maxBodyBytes: Int
    /// API keys required as `Authorization: Bearer <key>` (empty: open).
    let keys: [[UInt8]]
    let logger: Logger

    init(frontend: TFServingFrontend, maxBodyBytes: Int, apiKeys: Set<String>, logger: Logger) {
        self.frontend = frontend
        self.maxBodyBytes = maxBodyBytes
        self.keys = apiKeys.map { Array($0.utf8) }
        self.logger = logger
    }

    var responder: CallbackResponder<IngressRequestContext> {
        CallbackResponder { request, context in await self.respond(to: request, client: context.clientAddress) }
    }

    /// Answers one request, counted in the HTTP metrics under its route's
    /// pattern (`/v1/models/{model}:predict`, …; `NotFound` for any other path).
    func respond(to request: Request, client: String?) async -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let route = RESTPath(method: request.method.rawValue, path: request.uri.path).map(Self.pattern) ?? "NotFound"
        var trace = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &trace, using: HeaderExtractor())
        let response = await withSpan("\(request.method.rawValue) \(route)", context: trace, ofKind: .server) { span in
            let response = await answer(request, client: client)
            span.attributes["http.response.status_code"] = Int(response.status.code)
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
        HTTPMetrics.record(route: route, method: request.method, status: response.status,
                           nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
        return response
    }

    /// Reads `traceparent` and `tracestate` from HTTP headers.
    private struct HeaderExtractor: Extractor {
        func extract(key: String, from headers: HTTPFields) -> String? {
            headers.first { $0.name.canonicalName == key }?.value
        }
    }

    /// The metrics label of a route: its pattern, without the model's name or version.
    static func pattern(_ route: RESTPath) -> String {
        switch route.action {
        case .status: "/v1/models/{model}"
        case .metadata: "/v1/models/{model}/metadata"
        case .predict, .classify, .regress: "/v1/models/{model}:\(route.action.rawValue)"
        }
    }

    private func answer(_ request: Request, client: String?) async -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        if !keys.isEmpty {
            guard let header = request.headers[.authorization], APIKeys.isBearer(header, oneOf: keys) else {
                var response = Self.json(.object([("error", .string(request.headers[.authorization] == nil
                    ? "missing API key: send the header `Authorization: Bearer <key>`" : "invalid API key"))]),
                    status: .unauthorized)
                response.headers[.wwwAuthenticate] = "Bearer"
                return response
            }
        }
        guard let route = RESTPath(method: method, path: path) else {
            if path.lowercased().hasPrefix("/v1/") {
                return Self.error(TFServingError(.invalidArgument, "Malformed request: \(method) \(path)"))
            }
            return Self.json(.object([("error", .string("Not found: \(method) \(path)"))]), status: .notFound)
        }
        var body: [UInt8] = []
        if method == "POST" {
            var request = request
            do {
                let buffer = try await request.collectBody(upTo: maxBodyBytes)
                body = Array(buffer.readableBytesView)
            } catch {
                return Self.json(.object([("error", .string("Request body over \(maxBodyBytes) bytes"))]), status: .contentTooLarge)
            }
        }
        do {
            return Self.json(try await frontend.rest(route, body: body, origin: SubmissionOrigin(address: client, frontend: .tfServingREST)), status: .ok)
        } catch {
            if error.code == .internal || error.code == .unavailable {
                logger.error("TF Serving \(method) \(path): \(error.message)")
            }
            return Self.error(error)
        }
    }

    static func error(_ error: TFServingError) -> Response {
        var response = json(.object([("error", .string(error.message))]),
                            status: HTTPResponse.Status(code: error.code.httpStatus))
        if error.code == .unavailable || error.code == .resourceExhausted {
            response.headers[.retryAfter] = String(error.retryAfter ?? 1)
        }
        return response
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }
}
