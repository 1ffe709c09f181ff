import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An HTTP answer: status, body and, when the body is a JSON object or array, its value.
struct HTTPReply: @unchecked Sendable {
    // @unchecked Sendable: `json` holds only JSONSerialization's immutable values.
    var status: Int
    var body: Data
    var headers: [String: String]
    /// Seconds from sending the request to receiving the whole answer.
    var elapsed: TimeInterval
    /// Wall clock (ms since 1970) when the request was sent and when the answer was in.
    var sentAtMillis: Int64
    var receivedAtMillis: Int64

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
    var object: [String: Any]? { json as? [String: Any] }
    /// The `"error"` of a `{"error": "..."}` body.
    var errorMessage: String? { object?["error"] as? String }

    func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

/// A small HTTP client over URLSession (FoundationNetworking on Linux) for one base URL.
final class HTTPClient: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; URLSession is thread-safe.
    let base: URL
    private let session: URLSession

    init(port: Int, host: String = "127.0.0.1") {
        base = URL(string: "http://\(host):\(port)")!
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 120
        configuration.timeoutIntervalForResource = 180
        configuration.httpMaximumConnectionsPerHost = 16
        session = URLSession(configuration: configuration)
    }

    deinit {
        session.invalidateAndCancel()
    }

    func get(_ path: String, timeout: TimeInterval = 90, headers: [String: String] = [:]) async throws -> HTTPReply {
        try await send(method: "GET", path: path, body: nil, contentType: nil, timeout: timeout, headers: headers)
    }

    func post(_ path: String, body: Data, contentType: String = "application/json", timeout: TimeInterval = 90,
              headers: [String: String] = [:]) async throws -> HTTPReply {
        try await send(method: "POST", path: path, body: body, contentType: contentType, timeout: timeout, headers: headers)
    }

    func send(method: String, path: String, body: Data?, contentType: String?, timeout: TimeInterval,
              headers extraHeaders: [String: String] = [:]) async throws -> HTTPReply {
        guard let url = URL(string: path, relativeTo: base) else { throw PipelineError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        for (name, value) in extraHeaders { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let sentAt = Self.nowMillis()
        let started = Date()
        let (data, status, headers): (Data, Int, [String: String]) = try await withCheckedThrowingContinuation { continuation in
            let task = session.dataTask(with: request) { data, response, error in
                if let error {
                    continuation.resume(throwing: PipelineError("\(method) \(url.absoluteString) failed: \(error)"))
                } else if let http = response as? HTTPURLResponse {
                    var headers: [String: String] = [:]
                    for (key, value) in http.allHeaderFields { headers["\(key)"] = "\(value)" }
                    continuation.resume(returning: (data ?? Data(), http.statusCode, headers))
                } else {
                    continuation.resume(throwing: PipelineError("\(method) \(url.absoluteString): no HTTP response"))
                }
            }
            task.resume()
        }
        return HTTPReply(status: status, body: data, headers: headers,
                         elapsed: Date().timeIntervalSince(started), sentAtMillis: sentAt, receivedAtMillis: Self.nowMillis())
    }

    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// A job as `GET /job/{id}` shows it: `{"<id>": {"status", "prediction", "top", "timings", "error"?, ...}}`.
struct JobView: @unchecked Sendable, CustomStringConvertible {
    // @unchecked Sendable: `raw` holds only JSONSerialization's immutable values.
    struct Score: Equatable { var index: Int; var label: String; var score: Double }

    var id: String
    var status: String
    var prediction: String
    var model: String
    var top: [Score]
    var error: String?
    var timings: [String: Double]
    var raw: [String: Any]

    var isTerminal: Bool { ["succeeded", "failed", "expired", "cancelled"].contains(status) }

    init(id: String, reply: HTTPReply) throws {
        guard let outer = reply.object, let job = outer[id] as? [String: Any] else {
            throw PipelineError("GET /job/\(id) answered \(reply.status) without a \"\(id)\" object: \(reply.text.prefix(300))")
        }
        guard let status = job["status"] as? String else { throw PipelineError("job \(id) has no status: \(job)") }
        self.id = id
        self.status = status
        prediction = job["prediction"] as? String ?? ""
        model = job["model"] as? String ?? ""
        error = job["error"] as? String
        raw = job
        top = (job["top"] as? [[String: Any]] ?? []).map {
            Score(index: ($0["index"] as? NSNumber)?.intValue ?? -1, label: $0["label"] as? String ?? "",
                  score: ($0["score"] as? NSNumber)?.doubleValue ?? .nan)
        }
        var timings: [String: Double] = [:]
        for (key, value) in job["timings"] as? [String: Any] ?? [:] {
            if let number = value as? NSNumber { timings[key] = number.doubleValue }
        }
        self.timings = timings
    }

    var description: String {
        "\(id): \(status)" + (error.map { " (\($0))" } ?? "") + (top.isEmpty ? "" : " top=\(top.map(\.index))")
    }
}
