import Foundation

/// How an ``MQTTClient`` connects to its broker.
public struct MQTTConfiguration: Sendable, Equatable {
    /// Broker host name or address.
    public var host = "127.0.0.1"
    /// Broker TCP port.
    public var port = 1883
    /// Client identifier. Must be unique per broker: a second connection with the same
    /// identifier takes the first one's session over. Empty lets the broker (MQTT 5) or
    /// libmosquitto (MQTT 3.1.1) choose one; that needs `cleanStart`.
    public var clientID: String
    /// User name, if the broker wants one.
    public var username: String?
    /// Password, used only together with `username`.
    public var password: String?
    /// Protocol version; MQTT 5 by default.
    public var protocolVersion: MQTTProtocolVersion = .v5
    /// Start with a fresh session. With MQTT 5 libmosquitto sends no session-expiry
    /// interval, so the broker forgets the session at every disconnect anyway; the
    /// client re-subscribes after every reconnect whatever this says.
    public var cleanStart = true
    /// MQTT 5 session expiry interval in seconds, sent in every CONNECT
    /// (with `cleanStart` false this makes a persistent session: the broker
    /// keeps the subscriptions and queues QoS 1 messages while the client is
    /// away, this long). `nil` sends none (the session ends with the
    /// connection). With a value, the client makes every reconnection itself
    /// (libmosquitto's own reconnect would send no properties).
    public var sessionExpiry: UInt32?
    /// Keep-alive interval in seconds.
    public var keepAlive = 30
    /// TLS settings; `nil` for plain TCP.
    public var tls: MQTTTLS?
    /// First delay before reconnecting, in seconds (at least 1).
    public var reconnectDelayMin = 1
    /// Longest delay between reconnection attempts, in seconds. The delay grows from
    /// `reconnectDelayMin` up to this: libmosquitto's "exponential" backoff is
    /// min × (n+1)², i.e. 1, 4, 9, 16, 25, 30, 30 … seconds with the defaults.
    public var reconnectDelayMax = 30
    /// How long `connect()` waits for the broker's CONNACK.
    public var connectTimeout: Duration = .seconds(10)
    /// How long `publish` and `subscribe` wait, in all: for a lost connection to come
    /// back, then for the broker's PUBACK or SUBACK.
    public var operationTimeout: Duration = .seconds(30)

    /// Creates a configuration.
    public init(
        host: String = "127.0.0.1",
        port: Int = 1883,
        clientID: String,
        username: String? = nil,
        password: String? = nil,
        protocolVersion: MQTTProtocolVersion = .v5,
        cleanStart: Bool = true,
        keepAlive: Int = 30,
        tls: MQTTTLS? = nil,
        reconnectDelayMin: Int = 1,
        reconnectDelayMax: Int = 30,
        connectTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.username = username
        self.password = password
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.keepAlive = keepAlive
        self.tls = tls
        self.reconnectDelayMin = reconnectDelayMin
        self.reconnectDelayMax = reconnectDelayMax
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
    }

    /// `url` with the password of its user information replaced by `***`
    /// (`mqtt://user:***@host:1883`), for logs and error messages. A text that
    /// is not a URL with user information is returned as it is, except that
    /// anything between `://` and the last `@` before the host is masked.
    public static func redacting(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let userInfo = url[scheme.upperBound..<at]
        let user = userInfo.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let masked = userInfo.contains(":") ? "\(user):***" : user
        return url[..<scheme.upperBound] + masked + url[at...]
    }

    /// Creates a configuration from a URL: `mqtt://[user[:password]@]host[:port]` or
    /// `mqtts://…` (TLS against the system's CA store). Default ports are 1883 and 8883.
    /// User name and password are percent-decoded. Throws ``MQTTError/invalidURL(_:)``
    /// for another scheme, a missing host, a bad port, or a path, query or fragment.
    public init(url: String, clientID: String) throws {
        guard let components = URLComponents(string: url),
              let scheme = components.scheme?.lowercased()
        else { throw MQTTError.invalidURL(Self.redacting(url)) }
        let secure: Bool
        switch scheme {
        case "mqtt", "tcp": secure = false
        case "mqtts", "ssl": secure = true
        default: throw MQTTError.invalidURL(Self.redacting(url))
        }
        guard let host = components.host, !host.isEmpty,
              components.path.isEmpty || components.path == "/",
              components.query == nil, components.fragment == nil
        else { throw MQTTError.invalidURL(Self.redacting(url)) }
        let port = components.port ?? (secure ? 8883 : 1883)
        guard (1...65535).contains(port) else { throw MQTTError.invalidURL(Self.redacting(url)) }
        let user = components.user.flatMap { $0.isEmpty ? nil : $0 }
        self.init(
            host: host,
            port: port,
            clientID: clientID,
            username: user,
            password: user == nil ? nil : components.password,
            tls: secure ? MQTTTLS(caFile: "") : nil
        )
    }
}
