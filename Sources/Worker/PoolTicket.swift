import Dispatch
import Foundation

/// One request's passage through ``InferencePool``, between the task that
/// submitted it and the pool's threads: the pool says when the request's
/// batch starts (or that it failed before), the task answers whether it still
/// runs, and the pool hands over the outcome.
///
/// `@unchecked Sendable`: all state is behind `lock`; continuations are
/// resumed outside it. The pool's thread blocks on `answered`, never the task.
final class PoolTicket: @unchecked Sendable {
    /// Where the request stands when its task first hears from the pool.
    enum Stage {
        /// Its batch is about to run: answer with ``answer(_:)``.
        case batchStarting
        /// It is finished without reaching the engine.
        case done(InferencePool.Outcome)
    }

    private let lock = NSLock()
    private var reached: Stage?
    private var stageWaiter: CheckedContinuation<Stage, Never>?
    private var result: InferencePool.Outcome?
    private var outcomeWaiter: CheckedContinuation<InferencePool.Outcome, Never>?
    private var proceeds = false
    private let answered = DispatchSemaphore(value: 0)

    /// Pool side: the request has reached `stage`.
    func reach(_ stage: Stage) {
        lock.lock()
        if let waiter = stageWaiter {
            stageWaiter = nil
            lock.unlock()
            waiter.resume(returning: stage)
        } else {
            reached = stage
            lock.unlock()
        }
    }

    /// Task side: waits for the pool's first word.
    func stage() async -> Stage {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let reached {
                lock.unlock()
                continuation.resume(returning: reached)
            } else {
                stageWaiter = continuation
                lock.unlock()
            }
        }
    }

    /// Task side: the request runs in its batch (`true`) or is withdrawn.
    func answer(_ proceed: Bool) {
        lock.withLock { proceeds = proceed }
        answered.signal()
    }

    /// Pool side: blocks the calling pool thread until the task has answered.
    func waitForAnswer() -> Bool {
        answered.wait()
        return lock.withLock { proceeds }
    }

    /// Pool side: the request's outcome, after its batch ran.
    func finish(_ outcome: InferencePool.Outcome) {
        lock.lock()
        if let waiter = outcomeWaiter {
            outcomeWaiter = nil
            lock.unlock()
            waiter.resume(returning: outcome)
        } else {
            result = outcome
            lock.unlock()
        }
    }

    /// Task side: waits for the outcome of a request that proceeded.
    func outcome() async -> InferencePool.Outcome {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(returning: result)
            } else {
                outcomeWaiter = continuation
                lock.unlock()
            }
        }
    }
}
