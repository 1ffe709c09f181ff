import Foundation
import Jobs
import StoreClient
import Logging
import MQTT
import Observability
import ServiceLifecycle
import Tracing

/// The result store: keeps every job's record in a ``JobDatabase`` and serves
/// it over MQTT.
///
/// Subscriptions (all QoS 1):
/// - ``Jobs/Topics/allRequests`` and ``Jobs/Topics/allDeviceRequests``, the
///   ledger: each request is recorded
///   `queued`. JSON and binary (`image/jpeg`, fields in user properties)
///   requests are read with `JobRequest(message:)`. Undecodable ones are
///   logged and skipped: the worker answers those with a failed result, which
///   the store records like any other.
/// - ``Jobs/Topics/allResults``: ``Jobs/JobResult`` JSON, recorded with
///   ``JobDatabase/recordResult(_:)`` (the first terminal result wins).
/// - ``Jobs/Topics/allEvents``: a ``Jobs/JobResult`` JSON with status
///   `running`, recorded with ``JobDatabase/recordRunning(jobID:startedAt:worker:model:version:)``.
/// - ``Jobs/Topics/allWorkerHeartbeats``: a ``Jobs/WorkerHeartbeat`` keeps
///   the leases of the queued jobs a live worker holds.
/// - An event with status `queued` from a worker is a hand-back: the job is
///   published again at once.
/// - ``Jobs/Topics/storeQuery``: MQTT v5 request/response. The payload is a
///   ``StoreQuery`` (get a job, list jobs, delete a job); the reply goes to
///   the request's response topic with the same correlation data, content
///   type `application/json`, and is the job's ``Jobs/JobResult`` JSON, a
///   ``JobPage``, a ``JobDeletion`` or a ``StoreErrorReply``. A cancellation
///   is announced on ``Jobs/Topics/cancellations`` and the job's result topic
///   once committed.
///
/// It purges finished jobs older than the retention every `purgeInterval`,
/// publishes again (or ends) overdue jobs every `redeliveryInterval` (see
/// docs/reliability.md) and publishes the ledger counts, retained, on
/// ``Jobs/Topics/ledgerStats`` every `statsInterval`.
/// On graceful shutdown (or cancellation) it stops consuming, then
/// disconnects its client and returns. If a subscription ends on its own the
/// service throws ``ResultStoreError/subscriptionEnded(filter:)``.
public struct ResultStoreService: Service {
    public let configuration: ResultStoreConfiguration
    /// The store's database, shared with whoever else wants to read it.
    public let database: JobDatabase
    let client: MQTTClient
    let ledger: LedgerWriter
    /// Hand-backs that came before their request was recorded.
    let earlyHandBacks = EarlyHandBacks()
    let logger: Logger

    /// Opens the database at `configuration.databasePath`.
    public init(configuration: ResultStoreConfiguration = .init(),
                logger: Logger = Logger(label: "conveyor.result-store")) throws {
        try self.init(configuration: configuration, database: JobDatabase(path: configuration.databasePath),
                      logger: logger)
    }

    /// Uses an open database (`configuration.databasePath` is not used).
    public init(configuration: ResultStoreConfiguration, database: JobDatabase,
                logger: Logger = Logger(label: "conveyor.result-store")) {
        self.configuration = configuration
        self.database = database
        self.ledger = LedgerWriter(database: database, lease: configuration.lease, ttl: configuration.jobTTL)
        self.logger = logger
        var broker = configuration.broker
        broker.protocolVersion = .v5
        client = MQTTClient(broker, logger: logger, service: "store")
    }

    /// `GET /health/ready`: connected to the broker, and the database takes a write.
    public var readiness: Readiness {
        Readiness([
            Readiness.broker { [client] in client.isConnected },
            .init("database") { [database] in
                do { try await database.checkWritable(); return nil } catch { return "cannot write to the database: \(error)" }
            },
        ])
    }

    public func run() async throws {
        StoreMetrics.redelivered(0)
        try await client.connect()
        do {
            let requests = try await client.subscribe(Topics.allRequests, qos: 1)
            let deviceRequests = try await client.subscribe(Topics.allDeviceRequests, qos: 1)
            let results = try await client.subscribe(Topics.allResults, qos: 1)
            let events = try await client.subscribe(Topics.allEvents, qos: 1)
            let queries = try await client.subscribe(Topics.storeQuery, qos: 1)
            let heartbeats = try await client.subscribe(Topics.allWorkerHeartbeats, qos: 0)
            // Before "running": an ingress started after this line finds fresh stats at once.
            await publishStats(client: client)
            logger.info("result store running", metadata: ["database": "\(database.path)"])
            try await withGracefulShutdownHandler { [self] in
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        // Concurrently: requests that arrive during a commit share the next one.
                        await withDiscardingTaskGroup { requestGroup in
                            for await message in requests {
                                requestGroup.addTask {
                                    // The receipt goes out only after the request is committed.
                                    if let (topic, receipt) = await self.handleRequest(message) {
                                        await self.send(receipt, to: topic, client: client)
                                    }
                                }
                            }
                        }
                        try Self.checkEnded(Topics.allRequests)
                    }
                    group.addTask {
                        await withDiscardingTaskGroup { requestGroup in
                            for await message in deviceRequests {
                                requestGroup.addTask { await self.handleRequest(message) }
                            }
                        }
                        try Self.checkEnded(Topics.allDeviceRequests)
                    }
                    group.addTask {
                        for await message in results { await self.handleResult(message) }
                        try Self.checkEnded(Topics.allResults)
                    }
                    group.addTask {
                        for await message in events { await self.handleEvent(message) }
                        try Self.checkEnded(Topics.allEvents)
                    }
                    group.addTask {
                        for await message in heartbeats { await self.handleHeartbeat(message) }
                        try Self.checkEnded(Topics.allWorkerHeartbeats)
                    }
                    group.addTask {
                        // Queries are independent: answer them concurrently.
                        await withDiscardingTaskGroup { queryGroup in
                            for await message in queries {
                                queryGroup.addTask { await self.handleQuery(message, client: client) }
                            }
                        }
                        try Self.checkEnded(Topics.storeQuery)
                    }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.purgeLoop() } }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.redeliveryLoop(client: client) } }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.statsLoop(client: client) } }
                }
            } onGracefulShutdown: {
                // Disconnect first: the broker stops sending (what it has not sent stays in
                // the persistent session), and the streams end after what was received (and
                // so already acknowledged), which the loops still record.
                Task { await client.disconnect() }
            }
        } catch {
            logger.error("result store failed", metadata: ["error": "\(error)"])
            await client.disconnect()
            throw error
        }
        await client.disconnect()
        logger.info("result store stopped")
    }

    /// A subscription's loop ended: fine while stopping, an error otherwise.
    private static func checkEnded(_ filter: String) throws {
        if !Task.isCancelled && !Task.isShuttingDownGracefully { throw ResultStoreError.subscriptionEnded(filter: filter) }
    }

    func leaseEnd(from start: Int64) -> Int64 {
        start + configuration.lease.milliseconds
    }

    // MARK: - Retention

    private func purgeLoop() async {
        let retentionMillis = configuration.retention.milliseconds
        while !Task.isCancelled {
            do {
                let purged = try await database.purge(finishedBefore: Clock.nowMillis() - retentionMillis)
                if purged > 0 { logger.info("purged finished jobs", metadata: ["count": "\(purged)"]) }
            } catch {
                logger.error("retention purge failed", metadata: ["error": "\(error)"])
            }
            do {
                try await Task.sleep(for: configuration.purgeInterval)
            } catch {
                return  // cancelled: stopping
            }
        }
    }
}
