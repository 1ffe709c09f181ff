/// Who submits jobs: the client's address (the rate limit's key) and the front
/// end it came through (the `frontend` label of `conveyor_jobs_submitted_total`).
public struct SubmissionOrigin: Sendable, Equatable {
    /// The ingress's front ends. Devices publish to the broker directly; the store counts theirs.
    public enum Frontend: String, Sendable {
        case http
        case tfServingREST = "tfserving_rest"
        case tfServingGRPC = "tfserving_grpc"
    }

    /// The client's IP address, if known.
    public var address: String?
    public var frontend: Frontend

    public init(address: String?, frontend: Frontend) {
        self.address = address
        self.frontend = frontend
    }
}
