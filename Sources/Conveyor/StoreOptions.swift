import ArgumentParser
import MQTT
import ResultStore

/// The result store's database and ledger.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite file of the result store (env CONVEYOR_DATABASE; default conveyor-jobs.sqlite).")
    var database: String?

    @Option(help: "Hours finished jobs are kept (env CONVEYOR_RETENTION_HOURS; default 24).")
    var retentionHours: Double?

    @Option(help: "Seconds a job may go without a result before the store publishes its request again (env CONVEYOR_LEASE_SECONDS; default 60).")
    var leaseSeconds: Double?

    @Option(help: "Started attempts after which a job with no result ends failed (env CONVEYOR_MAX_DELIVERIES; default 3).")
    var maxDeliveries: Int?

    @Option(help: "Seconds a job may stay unfinished before it ends expired; 0: never (env CONVEYOR_JOB_TTL_SECONDS; default 3600).")
    var jobTtlSeconds: Double?

    @Option(help: "Seconds the broker keeps the store's MQTT session (and queues its messages) while it is away; 0: a clean session (env CONVEYOR_SESSION_EXPIRY_SECONDS; default 3600).")
    var sessionExpirySeconds: Int?

    var databasePath: String? { Setting.string(database, env: "CONVEYOR_DATABASE") }

    /// Every value checked before the command runs.
    func validate() throws { _ = try configuration(broker: .validationPlaceholder) }

    func configuration(broker: MQTTConfiguration) throws -> ResultStoreConfiguration {
        var config = ResultStoreConfiguration(broker: broker)
        config.databasePath = databasePath ?? config.databasePath
        if let hours = try Setting.double(retentionHours, "retention-hours", env: "CONVEYOR_RETENTION_HOURS") {
            config.retention = .seconds(hours * 3600)
        }
        if let seconds = try Setting.double(leaseSeconds, "lease-seconds", env: "CONVEYOR_LEASE_SECONDS", atLeast: 0.1) {
            config.lease = .milliseconds(Int(seconds * 1000))
        }
        config.maxDeliveries = try Setting.int(maxDeliveries, "max-deliveries", env: "CONVEYOR_MAX_DELIVERIES", in: 1...1000)
            ?? config.maxDeliveries
        if let seconds = try Setting.double(jobTtlSeconds, "job-ttl-seconds", env: "CONVEYOR_JOB_TTL_SECONDS") {
            config.jobTTL = seconds > 0 ? .milliseconds(Int(seconds * 1000)) : nil
        }
        // A persistent session: what is published while the store is away waits for it.
        let expiry = try Setting.int(sessionExpirySeconds, "session-expiry-seconds", env: "CONVEYOR_SESSION_EXPIRY_SECONDS",
                                     in: 0...Int(UInt32.max)) ?? 3600
        config.broker.cleanStart = expiry <= 0
        config.broker.sessionExpiry = expiry > 0 ? UInt32(expiry) : nil
        return config
    }
}
