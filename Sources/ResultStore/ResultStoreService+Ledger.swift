import Foundation
import Jobs
import StoreClient
import Logging
import MQTT
import Observability
import ServiceLifecycle
import Tracing

// The ledger: redelivery of overdue jobs and the ledger counts.
extension ResultStoreService {
    /// The ledger's promise: a job with no result by the end of its lease is
    /// published again; one a worker has started `maxDeliveries` times
    /// without a result ends `failed`; one older than its TTL ends `expired`
    /// (both published on the job's result topic like a worker's result, and
    /// on the request's reply topic, e.g. a device's).
    func redeliveryLoop(client: MQTTClient) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.redeliveryInterval)
            await redeliverOverdue(client: client)
        }
    }

    func redeliverOverdue(client: MQTTClient) async {
        while !Task.isCancelled {
            let now = Clock.nowMillis()
            let overdue: [JobDatabase.OverdueRequest]
            do { overdue = try await database.overdue(now: now) } catch {
                logger.error("ledger: cannot read overdue requests", metadata: ["error": "\(error)"])
                return
            }
            var progressed = 0
            for job in overdue {
                if await settle(job, now: now, client: client) { progressed += 1 }
            }
            // A full batch: look again at once (a broker restart can leave thousands due).
            if overdue.count < 500 || progressed == 0 { return }
        }
    }

    /// Ends, or publishes again, one overdue job. Returns whether it was handled.
    private func settle(_ job: JobDatabase.OverdueRequest, now: Int64, client: MQTTClient) async -> Bool {
        do {
            let ending: (JobStatus, String)?
            // What to publish it again with; nil once its message expiry has passed.
            let republished = job.entry.republishedProperties(now: now)
            if let expiresAt = job.expiresAt, expiresAt < now {
                let ttl = configuration.jobTTL.map { "\($0.milliseconds / 1000) s" } ?? "its TTL"
                ending = (.expired, "not finished within \(ttl) (published \(job.deliveries) time(s), started \(job.attempts) time(s))")
            } else if republished == nil {
                let interval = job.entry.properties.messageExpiryInterval ?? 0
                ending = (.expired, "its message expiry interval (\(interval) s) passed before it could be delivered again")
            } else if job.attempts >= configuration.maxDeliveries {
                ending = (.failed, "no result after \(job.attempts) attempts" + (job.lastError.map { "; last error: \($0)" } ?? ""))
            } else {
                ending = nil
            }
            if let (status, reason) = ending {
                let result = JobResult(jobID: job.id, model: job.entry.model, status: status,
                                       timings: JobTimings(finishedAt: now), error: reason, worker: nil)
                // A worker's result may have come first.
                guard let record = try await database.recordTerminal(result) else { return true }
                StoreMetrics.jobFinished(record, now: Clock.nowMillis())
                try await client.publish(Topics.result(job: job.id), payload: [UInt8](result.jsonPayload()), qos: 1)
                // A device waits on its reply topic (kept in the ledger's copy of the request).
                if let reply = job.entry.replyTopic, reply != Topics.result(job: job.id) {
                    var properties = MQTTProperties()
                    properties.contentType = "application/json"
                    try await client.publish(reply, payload: [UInt8](result.jsonPayload()), qos: 1, properties: properties)
                }
                logger.warning("ledger: job \(status.rawValue): \(reason)", metadata: ["job_id": "\(job.id)"])
            } else if let republished {
                try await database.redelivered(job.id, leaseUntil: leaseEnd(from: now))
                StoreMetrics.redelivered()
                // The message as it came, on the topic it came on.
                try await client.publish(job.entry.topic, payload: job.entry.payload, qos: 1, properties: republished)
                logger.notice("ledger: published again (publication \(job.deliveries + 1), \(job.attempts) attempt(s) so far)",
                              metadata: ["job_id": "\(job.id)"])
            }
            return true
        } catch {
            logger.error("ledger: cannot redeliver", metadata: ["job_id": "\(job.id)", "error": "\(error)"])
            return false
        }
    }

    /// Publishes the ledger counts, retained, every `statsInterval`.
    func statsLoop(client: MQTTClient) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.statsInterval)
            await publishStats(client: client)
        }
    }

    /// Publishes the ledger counts once (retained, QoS 0).
    func publishStats(client: MQTTClient) async {
        do {
            let counts = try await database.ledgerCounts()
            StoreMetrics.ledger(queued: counts.queued, running: counts.running)
            let stats = LedgerStats(queued: counts.queued, running: counts.running, at: Clock.nowMillis())
            let payload = try JSONCoding.encoder.encode(stats)
            try await client.publish(Topics.ledgerStats, payload: [UInt8](payload), qos: 0, retain: true)
        } catch is CancellationError {
            // Stopping.
        } catch {
            logger.warning("ledger: cannot publish stats", metadata: ["error": "\(error)"])
        }
    }
}
