import Foundation
import Synchronization

/// The jobs the result store announced as cancelled (``Jobs/Topics/cancellations``),
/// remembered for a while: a cancelled job that is still held here, or that
/// reaches this worker later (a message the broker still had queued), is
/// skipped, and the result of one already on the engine is not published.
///
/// Bounded: the oldest ids are forgotten past `capacity` or after
/// `lifetime`; a job forgotten that way and delivered again later would run,
/// and the store would still discard its result (the job is terminal there).
final class CancelledJobs: Sendable {
    private struct State {
        var ids: Set<String> = []
        /// Insertion order, for forgetting the oldest.
        var order: [(id: String, at: ContinuousClock.Instant)] = []
        var head = 0
    }

    private let state = Mutex(State())
    private let capacity: Int
    private let lifetime: Duration

    init(capacity: Int = 100_000, lifetime: Duration = .seconds(3600)) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// Remembers that job `id` is cancelled.
    func insert(_ id: String) {
        let now = ContinuousClock.now
        state.withLock { s in
            guard s.ids.insert(id).inserted else { return }
            s.order.append((id, now))
            // Forget what is too old or beyond the bound.
            while s.head < s.order.count,
                  s.order.count - s.head > capacity || now - s.order[s.head].at > lifetime {
                s.ids.remove(s.order[s.head].id)
                s.head += 1
            }
            if s.head > 1024, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// Whether job `id` was announced as cancelled (and not forgotten yet).
    func contains(_ id: String) -> Bool {
        state.withLock { $0.ids.contains(id) }
    }
}
