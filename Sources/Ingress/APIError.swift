import Foundation
import Hummingbird
import Jobs

/// An error shown to HTTP clients as `{"error": "..."}` with its status code.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(data: JSONBody.encode(["error": message]))))
    }
}

/// JSON bodies from Codable values (sorted keys, stable output: `JSONCoding`).
enum JSONBody {
    static func encode(_ value: some Encodable) -> Data {
        (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(data: encode(value))))
    }
}

extension ByteBuffer {
    init(data: Data) {
        self = ByteBufferAllocator().buffer(capacity: data.count)
        writeBytes(data)
    }
}

extension APIError {
    /// 503 (429 over the rate limit) with `Retry-After` for a job the submitter did not accept.
    init(refusal: JobSubmitter.Refusal) {
        let retryAfter: Int
        switch refusal {
        case .ledgerFull: retryAfter = 5
        case .ledgerSilent, .notRecorded: retryAfter = 2
        case .queueUnavailable: retryAfter = 1
        case let .rateLimited(_, wait): retryAfter = wait
        }
        if case .rateLimited = refusal {
            self.init(.tooManyRequests, refusal.message)
        } else {
            self.init(.serviceUnavailable, refusal.message)
        }
        headers[.retryAfter] = String(retryAfter)
    }
}
