import Synchronization

/// Hand-backs the store received before the request they give back was in
/// the ledger (the worker got the request, and answered, before the store's
/// commit of it): applied when the request is recorded, instead of leaving
/// the job to wait for its lease. Keeps the most recent `limit`.
final class EarlyHandBacks: Sendable {
    /// One early hand-back: why the worker gave the job back, if it said.
    struct HandBack: Equatable {
        var reason: String?
    }

    private struct State {
        var handBacks: [String: HandBack] = [:]
        var order: [String] = []
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int = 4096) {
        self.limit = limit
    }

    /// Notes a hand-back of `jobID` that found no ledger entry.
    func remember(_ jobID: String, reason: String?) {
        state.withLock { state in
            if state.handBacks.updateValue(HandBack(reason: reason), forKey: jobID) == nil { state.order.append(jobID) }
            if state.order.count > limit { state.handBacks[state.order.removeFirst()] = nil }
        }
    }

    /// The early hand-back of `jobID`, if there was one; forgets it.
    func take(_ jobID: String) -> HandBack? {
        state.withLock { state in
            guard let handBack = state.handBacks.removeValue(forKey: jobID) else { return nil }
            state.order.removeAll { $0 == jobID }
            return handBack
        }
    }
}
