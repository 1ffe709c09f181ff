import Foundation
import Jobs

/// The ingress's view of the result store's ledger, from the retained
/// ``Jobs/LedgerStats`` the store publishes every second, plus the jobs this
/// ingress accepted since the last stats (so a burst cannot overshoot the
/// limit by a second's worth).
///
/// `@unchecked Sendable`: the state is only touched with `lock` held.
final class LedgerGauge: @unchecked Sendable {
    /// Why a new job is refused.
    enum Refusal: Equatable {
        /// `queued` jobs are at the limit.
        case full(queued: Int, limit: Int)
        /// No fresh stats for this long: the ledger stopped (or cannot reach the broker).
        case silent(sinceSeconds: Int)
    }

    let maxQueued: Int
    let staleAfterMillis: Int64?
    private let lock = NSLock()
    private var stats: LedgerStats?
    /// Local time (ms) the stats are counted as of.
    private var statsTime: Int64 = 0
    private var acceptedSince = 0

    init(maxQueued: Int, staleAfter: Duration?) {
        self.maxQueued = maxQueued
        staleAfterMillis = staleAfter.map(\.milliseconds)
    }

    /// New stats. A retained message delivered on subscribing may be old: it
    /// counts as of its own timestamp.
    func update(_ new: LedgerStats, retained: Bool) {
        let now = Clock.nowMillis()
        lock.withLock {
            stats = new
            statsTime = retained ? min(now, new.at) : now
            acceptedSince = 0
        }
    }

    /// Reserves room for one job, or says why not.
    func admit(now: Int64 = Clock.nowMillis()) -> Refusal? {
        lock.withLock {
            // Before the first stats (just after start, the retained ones are on their way)
            // nothing is refused here: the ledger's receipt decides whether a job is kept.
            if let silent = silentMillis(now: now) {
                return .silent(sinceSeconds: Int(silent / 1000))
            }
            if maxQueued > 0, let stats {
                let queued = stats.queued + acceptedSince
                if queued >= maxQueued { return .full(queued: queued, limit: maxQueued) }
            }
            acceptedSince += 1
            return nil
        }
    }

    /// Why the stats are not fresh ("none received yet", "none for 12 s"),
    /// or `nil` while they are.
    func staleness(now: Int64 = Clock.nowMillis()) -> String? {
        lock.withLock {
            guard stats != nil else { return "none received yet" }
            return silentMillis(now: now).map { "none for \($0 / 1000) s" }
        }
    }

    /// How long since the last stats, when that is over the staleness limit
    /// (never before the first stats). Call with `lock` held.
    private func silentMillis(now: Int64) -> Int64? {
        guard let staleAfterMillis, stats != nil, now - statsTime > staleAfterMillis else { return nil }
        return now - statsTime
    }

    /// A reserved job was not published after all.
    func release() {
        lock.withLock { acceptedSince = max(0, acceptedSince - 1) }
    }
}
