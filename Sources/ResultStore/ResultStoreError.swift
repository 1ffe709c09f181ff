/// Why a ``ResultStoreService`` stopped with an error.
public enum ResultStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A subscription ended while the service was not shutting down (the MQTT
    /// client gave up). The service fails so its service group notices.
    case subscriptionEnded(filter: String)

    public var description: String {
        switch self {
        case let .subscriptionEnded(filter): "the subscription to \(filter) ended unexpectedly"
        }
    }
}
