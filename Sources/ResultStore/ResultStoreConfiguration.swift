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
    /// The lease. A started job with no result this long after the start is
    /// published again (its worker died or hangs); a queued job is published
    /// again this long after it was accepted or last published, unless a
    /// live worker's heartbeat says it holds it (then it is extended). Must be
    /// well over the workers' heartbeat interval. Default 60 s.
    public var lease: Duration = .seconds(60)
    /// Worker attempts (deliveries a worker started) after which a job with
    /// no result ends `failed`. Default 3.
    public var maxDeliveries = 3
    /// How long a job may stay unfinished, from when the ledger recorded it;
    /// then it ends `expired`. `nil`: never. Default 1 hour.
    public var jobTTL: Duration? = .seconds(3600)
    /// How often overdue jobs are looked for. Default 1 s.
    public var redeliveryInterval: Duration = .seconds(1)
    /// How often the ledger counts are published (retained) on
    /// `Topics.ledgerStats`. Default 1 s.
    public var statsInterval: Duration = .seconds(1)

    /// The broker used when none is given: `127.0.0.1:1883`, MQTT v5, client
    /// id `conveyor-store`, a persistent session (clean start off, kept one
    /// hour), so messages published while the store is down wait for it.
    public static var defaultBroker: MQTTConfiguration {
        var broker = MQTTConfiguration(host: "127.0.0.1", port: 1883, clientID: "conveyor-store", protocolVersion: .v5)
        broker.cleanStart = false
        broker.sessionExpiry = 3600
        return broker
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
