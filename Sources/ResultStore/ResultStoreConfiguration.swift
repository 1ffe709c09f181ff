import MQTT

/// Settings of a ``ResultStoreService``. Every field has a default suited to
/// one store beside a local broker.
public struct ResultStoreConfiguration: Sendable {
    /// The SQLite file (created with its directory if missing).
    public var databasePath: String
    /// How long finished (terminal) jobs are kept, counted from `finished_at`.
    public var retention: Duration
    /// How often the retention purge runs (also once at start).
    public var purgeInterval: Duration
    /// The broker to connect to. The store always speaks MQTT v5 (it needs
    /// response topics and correlation data); `protocolVersion` is overridden.
    public var broker: MQTTConfiguration
    /// How long a job may go without a result before its request is
    /// published again (from when it was accepted, or from when a worker last
    /// started it). Default 60 s.
    public var lease: Duration = .seconds(60)
    /// Deliveries after which a job with no result ends `failed`. Default 3.
    public var maxDeliveries = 3
    /// How often overdue jobs are looked for. Default 1 s.
    public var redeliveryInterval: Duration = .seconds(1)

    /// The broker used when none is given: `127.0.0.1:1883`, MQTT v5, client
    /// id `conveyor-result-store`.
    public static var defaultBroker: MQTTConfiguration {
        MQTTConfiguration(host: "127.0.0.1", port: 1883, clientID: "conveyor-result-store", protocolVersion: .v5)
    }

    public init(databasePath: String = "conveyor-jobs.sqlite",
                retention: Duration = .seconds(24 * 60 * 60),
                purgeInterval: Duration = .seconds(60),
                broker: MQTTConfiguration = ResultStoreConfiguration.defaultBroker) {
        self.databasePath = databasePath
        self.retention = retention
        self.purgeInterval = purgeInterval
        self.broker = broker
    }
}
