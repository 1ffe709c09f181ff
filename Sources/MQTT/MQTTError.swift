/// Errors thrown by ``MQTTClient``.
public enum MQTTError: Error, CustomStringConvertible, Equatable {
    /// The broker refused the connection in its CONNACK (for example bad credentials). `code` is
    /// the CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5, e.g. 135 "Not authorized").
    /// The client does not retry after this.
    case connectionRefused(code: Int, reason: String)
    /// The client is not connected: `connect()` was not called, failed, or `disconnect()` was called.
    case notConnected
    /// An operation did not complete in time; the text says what was being waited for.
    case timeout(String)
    /// The broker refused a subscription (SUBACK return code >= 0x80).
    case subscriptionRefused(filter: String, code: Int)
    /// The broker refused a QoS 1/2 publication (MQTT 5 PUBACK reason code >= 0x80, e.g. 135 "Not authorized").
    case publishRefused(topic: String, code: Int, reason: String)
    /// libmosquitto returned an error; `code` is its `mosq_err_t` and `message` its `mosquitto_strerror`.
    case library(code: Int, message: String)
    /// `MQTTConfiguration(url:clientID:)` was given a URL it cannot use.
    case invalidURL(String)

    public var description: String {
        switch self {
        case let .connectionRefused(code, reason):
            return "MQTT connection refused by the broker (\(code)): \(reason)"
        case .notConnected:
            return "MQTT client is not connected"
        case let .timeout(what):
            return "MQTT timeout: \(what)"
        case let .subscriptionRefused(filter, code):
            return "MQTT subscription to '\(filter)' refused by the broker (code \(code))"
        case let .publishRefused(topic, code, reason):
            return "MQTT publish to '\(topic)' refused by the broker (\(code)): \(reason)"
        case let .library(code, message):
            return "libmosquitto error \(code): \(message)"
        case let .invalidURL(url):
            return "invalid MQTT URL '\(url)' (expected mqtt://[user[:password]@]host[:port] or mqtts://...)"
        }
    }
}
