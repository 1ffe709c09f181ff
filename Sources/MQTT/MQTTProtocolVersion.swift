/// The MQTT protocol version a client speaks.
public enum MQTTProtocolVersion: Sendable, Equatable {
    /// MQTT 3.1.1. There are no properties: those given to `publish` are ignored and
    /// received messages carry empty ``MQTTProperties``.
    case v311
    /// MQTT 5.0, with properties, reason codes and shared subscriptions.
    case v5
}
