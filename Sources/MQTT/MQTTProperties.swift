/// The MQTT 5 PUBLISH properties this client sends and receives.
///
/// With MQTT 3.1.1 there are no properties: they are ignored on publish and empty on receipt.
public struct MQTTProperties: Sendable, Equatable {
    /// Topic a responder should publish its answer to (request/response pattern).
    public var responseTopic: String?
    /// Opaque data that ties a response to its request (at most 65,535 bytes).
    public var correlationData: [UInt8]?
    /// MIME type of the payload, e.g. `application/json`.
    public var contentType: String?
    /// Application-defined name/value pairs, in order; names may repeat.
    public var userProperties: [MQTTUserProperty] = []
    /// Seconds after which the broker drops the message if it has not been delivered.
    /// On receipt, the broker has already subtracted the time the message waited.
    public var messageExpiryInterval: UInt32?
    /// `true` if the payload is UTF-8 text, `false` if it is unspecified bytes, `nil` if not sent.
    public var payloadFormatIsUTF8: Bool?

    /// Creates a set of properties; every one is optional.
    public init(
        responseTopic: String? = nil,
        correlationData: [UInt8]? = nil,
        contentType: String? = nil,
        userProperties: [MQTTUserProperty] = [],
        messageExpiryInterval: UInt32? = nil,
        payloadFormatIsUTF8: Bool? = nil
    ) {
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.contentType = contentType
        self.userProperties = userProperties
        self.messageExpiryInterval = messageExpiryInterval
        self.payloadFormatIsUTF8 = payloadFormatIsUTF8
    }

    /// The value of the first user property called `name`, if any.
    public func userProperty(_ name: String) -> String? {
        userProperties.first { $0.name == name }?.value
    }

    /// `true` if no property is set.
    var isEmpty: Bool {
        self == MQTTProperties()
    }
}
