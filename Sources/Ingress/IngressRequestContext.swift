import Hummingbird

/// The ingress's request context: Hummingbird's basic one plus the client's
/// address, which the per-client rate limit is keyed on.
public struct IngressRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address (no port), or `nil` if unknown.
    public let clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }
}
