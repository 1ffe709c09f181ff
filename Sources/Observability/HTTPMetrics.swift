import CoreMetrics
import Foundation
import Hummingbird

/// `conveyor_http_requests_total{route,method,status}` and
/// `conveyor_http_request_duration_seconds{route,method}` for every HTTP
/// request a service answers. `route` is the route's pattern (`/job/{id}`),
/// never the raw path, so job ids do not become label values; a request no
/// route matched counts under `NotFound` (as Hummingbird names it).
public enum HTTPMetrics {
    /// Counts one answered request.
    public static func record(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status,
                              nanoseconds: UInt64) {
        Counter(label: "conveyor_http_requests_total",
                dimensions: [("route", route), ("method", method.rawValue), ("status", String(status.code))]).increment()
        Timer(label: "conveyor_http_request_duration_seconds",
              dimensions: [("route", route), ("method", method.rawValue)]).recordNanoseconds(Int64(nanoseconds))
    }
}

/// Records ``HTTPMetrics`` for the routes of a router (the route's pattern
/// from `context.endpointPath`). Errors thrown by later middleware or the
/// route count with their HTTP status (500 if they have none).
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context,
                       next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            HTTPMetrics.record(route: context.endpointPath ?? "NotFound", method: request.method,
                               status: response.status, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            HTTPMetrics.record(route: context.endpointPath ?? "NotFound", method: request.method,
                               status: status, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            throw error
        }
    }
}
