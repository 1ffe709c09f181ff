import Foundation
import GRDB
import Jobs
import MQTT
import StoreClient

extension JobDatabase {
    // MARK: - Writes

    /// Records a request seen on the ledger: inserts the job as `queued`
    /// (`queued_at` = `submittedAt`) unless it exists. An existing row keeps
    /// its status; only its missing model, version and `queued_at` are filled
    /// in. Returns whether a new row was created.
    ///
    /// With `leaseUntil` the request also enters the ledger (`pending`, the
    /// message as it came) unless the job already ended: it is published again
    /// if no worker holds or finishes it by then, and it ends `expired` at
    /// `expiresAt`.
    @discardableResult
    public func recordRequest(_ entry: LedgerEntry, leaseUntil: Int64? = nil, expiresAt: Int64? = nil) async throws -> Bool {
        try await recordRequests([entry], leaseUntil: leaseUntil, expiresAt: expiresAt)[0]
    }

    /// Records several requests as ``recordRequest(_:leaseUntil:expiresAt:)``
    /// does, in one transaction (one commit for all: the store's group
    /// commit). Returns, for each, whether a new row was created.
    public func recordRequests(_ entries: [LedgerEntry], leaseUntil: Int64? = nil, expiresAt: Int64? = nil) async throws -> [Bool] {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            try entries.map { try Self.insertRequest(db, $0, leaseUntil: leaseUntil, expiresAt: expiresAt, now: now) }
        }
    }

    private static func insertRequest(_ db: Database, _ entry: LedgerEntry, leaseUntil: Int64?, expiresAt: Int64?,
                                      now: Int64) throws -> Bool {
        let existing = try fetch(db, entry.jobID)
        if let leaseUntil, existing?.status.isTerminal != true {
            // Kept (the message as it came) until the job ends, so it can be delivered again.
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO pending (id, model, payload, lease_until, expires_at,
                                                   topic, properties, version, reply_topic, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [entry.jobID, entry.model, Data(entry.payload), leaseUntil, expiresAt,
                            entry.topic, LedgerEntry.StoredProperties.encode(entry.properties), entry.version,
                            entry.replyTopic, entry.receivedAt])
        }
        if var record = existing {
            let before = record
            if record.model.isEmpty { record.model = entry.model }
            if record.version == nil { record.version = entry.version }
            if record.queuedAt == nil { record.queuedAt = entry.submittedAt }
            if record != before {
                record.updatedAt = now
                try save(db, record)
            }
            return false
        }
        try save(db, JobRecord(id: entry.jobID, model: entry.model, version: entry.version,
                               status: .queued, queuedAt: entry.submittedAt, updatedAt: now))
        return true
    }

    /// Records that a worker took the job at `startedAt` (a running event).
    ///
    /// Ignored (returns `false`) when the job is already terminal, when it is
    /// a redelivery of the running event already recorded (same `startedAt`
    /// and worker) or a stale one (earlier `startedAt` than the recorded
    /// attempt). Otherwise the job becomes `running`, `attempts` goes up by
    /// one, and the row is created if the ledger entry was missed. In the
    /// ledger the new attempt's lease runs to `leaseUntil` (counted from the
    /// start, not from acceptance).
    @discardableResult
    public func recordRunning(jobID: String, startedAt: Int64, worker: String?,
                              model: String? = nil, version: Int? = nil, leaseUntil: Int64? = nil) async throws -> Bool {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            var record = try Self.fetch(db, jobID)
                ?? JobRecord(id: jobID, model: model ?? "", version: version, status: .queued, updatedAt: now)
            guard !record.status.isTerminal else { return false }
            if record.status == .running, let recorded = record.startedAt {
                if recorded == startedAt && record.worker == worker { return false }
                if recorded > startedAt { return false }
            }
            if record.model.isEmpty, let model { record.model = model }
            if record.version == nil { record.version = version }
            record.status = .running
            record.startedAt = startedAt
            record.worker = worker
            record.attempts += 1
            record.updatedAt = now
            try Self.save(db, record)
            if let leaseUntil {
                try db.execute(sql: "UPDATE pending SET lease_until = ?, started_at = ?, holder = ? WHERE id = ?",
                               arguments: [leaseUntil, startedAt, worker, jobID])
            }
            return true
        }
    }

    /// A live worker reports holding these jobs (received, not started yet):
    /// their queue lease is extended to `leaseUntil`, so a backlog is never
    /// published again while its holder lives. Started jobs are left alone
    /// (their lease counts from the start). Returns how many rows changed.
    @discardableResult
    public func held(_ ids: [String], by worker: String, leaseUntil: Int64) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.write { db in
            var changed = 0
            let statement = try db.makeStatement(
                sql: "UPDATE pending SET lease_until = MAX(lease_until, ?), holder = ? WHERE id = ? AND started_at IS NULL")
            for id in ids {
                try statement.execute(arguments: [leaseUntil, worker, id])
                changed += db.changesCount
            }
            return changed
        }
    }

    /// A worker gives a job back (it is stopping, or the attempt failed for a
    /// reason that is not the request's fault): the job is due for delivery at
    /// once; `reason` is kept for the final failure message.
    @discardableResult
    public func handedBack(_ id: String, reason: String?) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE pending SET lease_until = 0, started_at = NULL, holder = NULL,
                                   last_error = COALESCE(?, last_error) WHERE id = ?
                """, arguments: [reason, id])
            return db.changesCount > 0
        }
    }

    /// Records a message from a result topic.
    ///
    /// A terminal result is applied only if the job is not terminal yet: the
    /// FIRST terminal result wins, and a later one (a duplicate delivery, or a
    /// second worker finishing a redelivered job) returns `false` and changes
    /// nothing. Applying it sets status, top, error, inference time and
    /// `finished_at` (the receipt time if the result carries none); worker,
    /// model, version and `started_at` come from the result when it has them
    /// and are kept from the row otherwise; `queued_at` keeps the ledger's
    /// value. A result for an unknown job inserts it.
    ///
    /// A non-terminal result is treated as the event it describes: `running`
    /// as ``recordRunning(jobID:startedAt:worker:model:version:)``, `queued`
    /// as a ledger entry without an image.
    @discardableResult
    public func recordResult(_ result: JobResult) async throws -> Bool {
        switch result.status {
        case .running:
            try await recordRunning(jobID: result.jobID, startedAt: result.timings.startedAt ?? Clock.nowMillis(),
                                    worker: result.worker, model: result.model.isEmpty ? nil : result.model,
                                    version: result.version)
        case .queued:
            try await recordQueued(result)
        case .succeeded, .failed, .expired, .cancelled:
            try await recordTerminal(result) != nil
        }
    }

    /// Applies a terminal result as ``recordResult(_:)`` does and returns the
    /// row it wrote, or `nil` when the job had already ended.
    public func recordTerminal(_ result: JobResult) async throws -> JobRecord? {
        precondition(result.status.isTerminal, "recordTerminal takes terminal results")
        let now = Clock.nowMillis()
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [result.jobID])
            let existing = try Self.fetch(db, result.jobID)
            if let existing, existing.status.isTerminal { return nil }
            var record = existing ?? JobRecord(id: result.jobID, status: result.status, updatedAt: now)
            if !result.model.isEmpty { record.model = result.model }
            if let version = result.version { record.version = version }
            record.status = result.status
            record.top = result.top
            record.error = result.error
            if let worker = result.worker { record.worker = worker }
            if record.queuedAt == nil { record.queuedAt = result.timings.queuedAt }
            if let startedAt = result.timings.startedAt {
                record.startedAt = startedAt
                record.attempts = max(record.attempts, 1)
            }
            record.finishedAt = result.timings.finishedAt ?? now
            record.inferenceMs = result.timings.inferenceMs
            record.updatedAt = now
            try Self.save(db, record)
            return record
        }
    }

    /// A `queued` status message: creates the row if absent, fills missing fields.
    private func recordQueued(_ result: JobResult) async throws -> Bool {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            if var record = try Self.fetch(db, result.jobID) {
                let before = record
                if record.model.isEmpty { record.model = result.model }
                if record.version == nil { record.version = result.version }
                if record.queuedAt == nil { record.queuedAt = result.timings.queuedAt }
                if record != before {
                    record.updatedAt = now
                    try Self.save(db, record)
                }
                return false
            }
            try Self.save(db, JobRecord(id: result.jobID, model: result.model, version: result.version,
                                        status: .queued, queuedAt: result.timings.queuedAt ?? now, updatedAt: now))
            return true
        }
    }

    /// Deletes terminal jobs that finished before `finishedBefore`
    /// (milliseconds since 1970) and returns how many. Queued and running jobs
    /// are never purged.
    @discardableResult
    public func purge(finishedBefore: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: """
                    DELETE FROM jobs
                    WHERE status IN ('succeeded', 'failed', 'expired', 'cancelled') AND finished_at < ?
                    """,
                arguments: [finishedBefore])
            return db.changesCount
        }
    }

    /// What ``delete(_:)`` did.
    public enum Deletion: Sendable, Equatable {
        /// No such job.
        case notFound
        /// The job had ended; its row is gone.
        case deleted
        /// The job had not ended: it is now cancelled (`record`), its request
        /// is out of the ledger. `replyTopic` is where the request asked for
        /// its result, if it named one. `new` is false when it was cancelled
        /// before (nothing changed).
        case cancelled(record: JobRecord, replyTopic: String?, new: Bool)
    }

    /// Deletes job `id`'s data. A job that has not ended is cancelled
    /// instead: it becomes `cancelled` (terminal, so a result that still
    /// comes is discarded), its request leaves the ledger (it is never
    /// delivered again and its image is gone), and its row stays, without
    /// predictions, until retention purges it. Deleting a cancelled job
    /// changes nothing, so the call is idempotent.
    public func delete(_ id: String) async throws -> Deletion {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            guard var record = try Self.fetch(db, id) else { return .notFound }
            switch record.status {
            case .cancelled:
                return .cancelled(record: record, replyTopic: nil, new: false)
            case .queued, .running:
                let replyTopic = try String.fetchOne(db, sql: "SELECT reply_topic FROM pending WHERE id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [id])
                record.status = .cancelled
                record.top = []
                record.error = "cancelled on request"
                record.finishedAt = now
                record.inferenceMs = nil
                record.updatedAt = now
                try Self.save(db, record)
                return .cancelled(record: record, replyTopic: replyTopic, new: true)
            case .succeeded, .failed, .expired:
                try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id])
                return .deleted
            }
        }
    }

    /// Commits a write (the `health` row), so a full disk, a read-only file or
    /// a lock held too long shows as an error. For the readiness probe.
    public func checkWritable() async throws {
        let now = Clock.nowMillis()
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                           arguments: [now])
        }
    }
}
