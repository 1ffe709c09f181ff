/// An MQTT 5 user property: a name/value pair attached to a message. Names may repeat.
public struct MQTTUserProperty: Sendable, Equatable, Hashable {
    /// The property's name.
    public var name: String
    /// The property's value.
    public var value: String

    /// Creates a user property.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
