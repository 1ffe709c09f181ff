import Foundation
import Jobs

/// Wakes long-polling requests when their job's result is published: one
/// subscription to every result topic, and a mailbox per waiting request.
/// A request registers before it asks the store, so a result published in
/// between is kept for it rather than missed; and the most recent results are
/// remembered, so a job that ended before its first poll registered (a fast
/// failure can end before `POST /predict` has answered, since the answer waits
/// for the ledger's receipt) is found even if the store has not recorded its
/// result yet.
final class ResultWatcher: @unchecked Sendable {
    // Sendable: `mailboxes` is only touched under `lock`.
    private enum Mailbox {
        case empty
        case waiting(CheckedContinuation<JobResult?, Never>)
        case delivered(JobResult)
    }

    private let lock = NSLock()
    private var mailboxes: [String: [UUID: Mailbox]] = [:]
    private var stopping = false
    /// The last terminal results seen, by job id, oldest first in `recentOrder`.
    private var recent: [String: JobResult] = [:]
    private var recentOrder: [String] = []
    /// How many recent results are remembered (at least; up to twice as many).
    let recentCapacity: Int

    init(recentCapacity: Int = 4096) {
        self.recentCapacity = recentCapacity
    }

    /// The ingress is stopping: every waiting long poll wakes now (and answers with the
    /// job's current state), and later waits return at once.
    func wakeAll() {
        let waiting: [CheckedContinuation<JobResult?, Never>] = lock.withLock {
            stopping = true
            var wake: [CheckedContinuation<JobResult?, Never>] = []
            for (id, boxes) in mailboxes {
                for (token, box) in boxes {
                    if case .waiting(let continuation) = box {
                        wake.append(continuation)
                        mailboxes[id]?[token] = nil
                    }
                }
                if mailboxes[id]?.isEmpty == true { mailboxes[id] = nil }
            }
            return wake
        }
        for continuation in waiting { continuation.resume(returning: nil) }
    }

    /// Hands a terminal result to the long polls registered for its job, and
    /// remembers it for polls that register later. Other statuses are ignored.
    func deliver(_ result: JobResult) {
        guard result.status.isTerminal else { return }
        let waiting: [CheckedContinuation<JobResult?, Never>] = lock.withLock {
            remember(result)
            guard let boxes = mailboxes[result.jobID] else { return [] }
            var wake: [CheckedContinuation<JobResult?, Never>] = []
            for (token, box) in boxes {
                switch box {
                case .waiting(let continuation):
                    wake.append(continuation)
                    mailboxes[result.jobID]?[token] = nil
                case .empty:
                    mailboxes[result.jobID]?[token] = .delivered(result)
                case .delivered:
                    break
                }
            }
            if mailboxes[result.jobID]?.isEmpty == true { mailboxes[result.jobID] = nil }
            return wake
        }
        for continuation in waiting { continuation.resume(returning: result) }
    }

    /// Keeps `result` among the recent ones (call with `lock` held). The first
    /// terminal result of a job is kept, as the store keeps it.
    private func remember(_ result: JobResult) {
        guard recent[result.jobID] == nil else { return }
        recent[result.jobID] = result
        recentOrder.append(result.jobID)
        // Forget the oldest half at once, so each result costs O(1) on average.
        if recentOrder.count >= 2 * recentCapacity {
            for id in recentOrder.prefix(recentCapacity) { recent[id] = nil }
            recentOrder.removeFirst(recentCapacity)
        }
    }

    /// Starts collecting job `id`'s result for a later `wait`; a result seen
    /// recently is delivered at once.
    func register(_ id: String) -> UUID {
        let token = UUID()
        lock.withLock { mailboxes[id, default: [:]][token] = recent[id].map { .delivered($0) } ?? .empty }
        return token
    }

    /// Stops collecting for a registration that will not wait.
    func unregister(_ id: String, _ token: UUID) {
        lock.withLock {
            mailboxes[id]?[token] = nil
            if mailboxes[id]?.isEmpty == true { mailboxes[id] = nil }
        }
    }

    /// Waits up to `timeout` for the terminal result of a registered job; nil if none came.
    func wait(_ id: String, _ token: UUID, timeout: Duration) async -> JobResult? {
        await withCheckedContinuation { continuation in
            let ready: JobResult?? = lock.withLock {
                if case .delivered(let result) = mailboxes[id]?[token] {
                    mailboxes[id]?[token] = nil
                    if mailboxes[id]?.isEmpty == true { mailboxes[id] = nil }
                    return .some(result)
                }
                if stopping {
                    mailboxes[id]?[token] = nil
                    if mailboxes[id]?.isEmpty == true { mailboxes[id] = nil }
                    return .some(nil)
                }
                mailboxes[id, default: [:]][token] = .waiting(continuation)
                return nil
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            // Registered before the timer starts, so a short timeout cannot miss it.
            Task {
                try? await Task.sleep(for: timeout)
                let pending: CheckedContinuation<JobResult?, Never>? = self.lock.withLock {
                    guard case .waiting(let c) = self.mailboxes[id]?[token] else { return nil }
                    self.mailboxes[id]?[token] = nil
                    if self.mailboxes[id]?.isEmpty == true { self.mailboxes[id] = nil }
                    return c
                }
                pending?.resume(returning: nil)
            }
        }
    }
}
