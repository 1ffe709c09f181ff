import Hummingbird
import Logging
import TFServing

/// TF Serving's REST API (`/v1/models/…`, usually on port 8501) as a
/// Hummingbird responder. Paths are matched the way TF Serving matches them
/// (see ``TFServing/RESTPath``); every answer is JSON, errors as
/// `{"error": "…"}` with TF Serving's HTTP status for the error's code.
struct TFServingREST: Sendable {
    let frontend: TFServingFrontend
    let maxBodyBytes: Int
    let logger: Logger

    var responder: CallbackResponder<BasicRequestContext> {
        CallbackResponder { request, _ in await self.respond(to: request) }
    }

    func respond(to request: Request) async -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
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
            return Self.json(try await frontend.rest(route, body: body), status: .ok)
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
            response.headers[.retryAfter] = "1"
        }
        return response
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }
}
