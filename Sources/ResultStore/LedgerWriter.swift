import Jobs
import Synchronization

/// Commits requests to the ledger in groups: every request that arrives while
/// a commit is under way goes into the next one, so a burst of requests costs
/// a few SQLite transactions instead of one each, and a lone request is
/// committed at once (no waiting for company).
///
/// ``record(_:)`` returns once the request's transaction is committed, or
/// throws its error (every request of a failed group gets it).
final class LedgerWriter: Sendable {
    private struct Waiting {
        var entry: LedgerEntry
        var continuation: CheckedContinuation<Bool, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var writing = false
    }

    private let database: JobDatabase
    private let lease: Duration
    private let ttl: Duration?
    private let state = Mutex(State())

    /// Requests enter the ledger with `lease` from their commit and, with a
    /// `ttl`, expire that long after it.
    init(database: JobDatabase, lease: Duration, ttl: Duration?) {
        self.database = database
        self.lease = lease
        self.ttl = ttl
    }

    /// Commits `entry` (with the next group) and returns once it is durable:
    /// whether it created the job (see ``JobDatabase/recordRequests(_:leaseUntil:expiresAt:)``).
    @discardableResult
    func record(_ entry: LedgerEntry) async throws -> Bool {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            let start = state.withLock { state -> Bool in
                state.queue.append(Waiting(entry: entry, continuation: continuation))
                guard !state.writing else { return false }
                state.writing = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Commits what is queued, group after group, until nothing is.
    private func drain() async {
        while true {
            let group = state.withLock { state -> [Waiting] in
                let group = state.queue
                state.queue = []
                if group.isEmpty { state.writing = false }
                return group
            }
            guard !group.isEmpty else { return }
            let now = Clock.nowMillis()
            do {
                let created = try await database.recordRequests(group.map(\.entry), leaseUntil: now + lease.milliseconds,
                                                                expiresAt: ttl.map { now + $0.milliseconds })
                for (waiting, new) in zip(group, created) { waiting.continuation.resume(returning: new) }
            } catch {
                for waiting in group { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
