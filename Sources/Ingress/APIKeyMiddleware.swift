import Foundation
import Hummingbird
import Observability

/// API keys the ingress accepts: read from a file (one key per line; blank lines and
/// lines starting with `#` are skipped). Keys are compared in constant time and never
/// logged.
public enum APIKeys {
    /// The keys in a keys file's text.
    public static func parse(file text: String) -> Set<String> {
        Set(text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") })
    }

    /// Whether an `Authorization` value is `Bearer <one of keys>`.
    static func isBearer(_ header: String, oneOf keys: [[UInt8]]) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1)
        return parts.count == 2 && parts[0].lowercased() == "bearer"
            && contains(keys, parts[1].trimmingCharacters(in: .whitespaces))
    }

    /// Whether `candidate` is one of `keys`, comparing every byte of every key (no early exit,
    /// so the time taken does not tell how much of a key was right).
    static func contains(_ keys: [[UInt8]], _ candidate: String) -> Bool {
        let given = Array(candidate.utf8)
        var found = false
        for key in keys {
            var difference = UInt8(key.count == given.count ? 0 : 1)
            for i in 0..<key.count {
                difference |= key[i] ^ (i < given.count ? given[i] : 0)
            }
            found = found || difference == 0
        }
        return found
    }
}

/// Requires `Authorization: Bearer <key>` with one of the configured keys on every route
/// but the probes (`/health`, `/health/live`, `/health/ready`, `/metrics`) and the console's page and assets; answers 401 `{"error": …}` with `WWW-Authenticate: Bearer` otherwise.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [[UInt8]]

    /// Paths answered without a key: health probes and metrics scrapers carry none, and the
    /// console's page asks for the key itself (its API calls and event stream send it).
    static var open: Set<String> { Set(["/health"] + ProbeRoutes.paths + ConsoleAssets.paths) }

    init(keys: Set<String>) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.open.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw Self.unauthorized("missing API key: send the header `Authorization: Bearer <key>`")
        }
        guard APIKeys.isBearer(header, oneOf: keys) else {
            throw Self.unauthorized("invalid API key")
        }
        return try await next(request, context)
    }

    static func unauthorized(_ message: String) -> APIError {
        var error = APIError(.unauthorized, message)
        error.headers[.wwwAuthenticate] = "Bearer"
        return error
    }
}
