import Hummingbird

/// Makes every error of the job API JSON (`{"error": "..."}`), including the
/// router's own: an unknown path is 404 and a known path with another method
/// is 405 with `Allow`, instead of Hummingbird's empty bodies.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The job API's routes: path patterns (`:name` matches one segment) and their methods.
    let routes: [(method: HTTPRequest.Method, path: String)]

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let path = request.uri.path
            if error.status == .notFound, case let allowed = methods(for: path), !allowed.isEmpty {
                var refusal = APIError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(path); use \(allowed.map(\.rawValue).joined(separator: ", "))")
                refusal.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
                throw refusal
            }
            if error.status == .notFound {
                throw APIError(.notFound, "no route for \(request.method.rawValue) \(path)")
            }
            var converted = APIError(error.status, error.body ?? error.status.reasonPhrase)
            converted.headers = error.headers
            throw converted
        }
    }

    /// The methods `path` is served with (empty: no such route).
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return pattern.count == segments.count
                && zip(pattern, segments).allSatisfy { $0.hasPrefix(":") ? !$1.isEmpty : $0 == $1 }
        }.map(\.method)
    }
}
