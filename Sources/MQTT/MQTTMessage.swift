/// A message received from the broker.
public struct MQTTMessage: Sendable, Equatable {
    /// The topic it was published to.
    public var topic: String
    /// The payload bytes.
    public var payload: [UInt8]
    /// The quality of service it was delivered with (0, 1 or 2).
    public var qos: Int
    /// `true` if the broker sent it because it was retained, not because it was just published.
    public var retain: Bool
    /// Its MQTT 5 properties (always empty with MQTT 3.1.1).
    public var properties: MQTTProperties

    /// Creates a message.
    public init(topic: String, payload: [UInt8], qos: Int = 0, retain: Bool = false, properties: MQTTProperties = MQTTProperties()) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}
