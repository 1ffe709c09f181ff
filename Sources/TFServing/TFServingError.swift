/// An error answered to a TF Serving client: TensorFlow's canonical code and
/// a message. REST sends `{"error": message}` with the code's HTTP status;
/// gRPC sends the code as the call's status.
public struct TFServingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// TensorFlow's canonical error codes that Conveyor answers with.
    public enum Code: Int, Sendable {
        case cancelled = 1
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case resourceExhausted = 8
        case failedPrecondition = 9
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case unauthenticated = 16

        /// The HTTP status TF Serving's REST API uses for the code.
        public var httpStatus: Int {
            switch self {
            // What gRPC gateways answer for CANCELLED ("client closed request").
            case .cancelled: 499
            case .invalidArgument, .failedPrecondition: 400
            case .unauthenticated: 401
            case .notFound: 404
            case .resourceExhausted: 429
            case .internal: 500
            case .unimplemented: 501
            case .unavailable: 503
            case .deadlineExceeded: 504
            }
        }
    }

    public var code: Code
    public var message: String
    /// Seconds after which the client may try again (REST `Retry-After`), for
    /// `unavailable` and `resourceExhausted`.
    public var retryAfter: Int?

    public init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    public static func invalid(_ message: String) -> TFServingError { .init(.invalidArgument, message) }
}
