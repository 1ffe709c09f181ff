import Foundation
import Instrumentation
import Jobs

/// The jobs a worker holds: received and waiting for a runner (`queued`, in
/// arrival order), taken by a runner and waiting for their batch (`taken`),
/// or in a batch on the engine (`running`). The worker's heartbeat lists them
/// (queued and taken as queued), so the ledger knows they are in live hands;
/// on a graceful stop the queued ones are handed back and the taken ones run.
///
/// `@unchecked Sendable`: all state is behind `lock`; waiting runners are
/// resumed outside it.
final class HeldJobs: @unchecked Sendable {
    /// One received request, with what its reply needs.
    struct Job: Sendable {
        var request: JobRequest
        var correlation: [UInt8]?
        /// When the message arrived, and its v5 Message Expiry Interval then (seconds left).
        var arrivedAt: ContinuousClock.Instant = .now
        /// The same moment on the wall clock (milliseconds since 1970), for the result's timings.
        var receivedAt: Int64 = Clock.nowMillis()
        var expirySeconds: Int?
        /// The request's trace context (from its `traceparent` user property).
        var trace: ServiceContext = .topLevel
    }

    private let lock = NSLock()
    private var queue: [Job] = []
    private var head = 0
    private var taken: Set<String> = []
    private var running: [String: Int64] = [:]
    private var ids: Set<String> = []
    private var waiters: [CheckedContinuation<Job?, Never>] = []
    private var closed = false

    /// What ``add(_:limit:)`` did with a job.
    enum Admission: Equatable {
        /// Held: queued, or given to an idle runner.
        case added
        /// Dropped: the same job is already held (a redelivery that reached the
        /// worker holding it).
        case duplicate
        /// Not taken: the worker is stopping.
        case closed
        /// Not taken: the worker already holds `limit` jobs.
        case full
    }

    /// Adds a received job unless it is already held or `limit` jobs (queued,
    /// taken by a runner or running) are held already.
    func add(_ job: Job, limit: Int = .max) -> Admission {
        lock.lock()
        guard !closed else {
            lock.unlock()
            return .closed
        }
        guard !ids.contains(job.request.jobID) else {
            lock.unlock()
            return .duplicate
        }
        guard ids.count < limit else {
            lock.unlock()
            return .full
        }
        ids.insert(job.request.jobID)
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            taken.insert(job.request.jobID)
            lock.unlock()
            waiter.resume(returning: job)
            return .added
        }
        queue.append(job)
        lock.unlock()
        return .added
    }

    /// The next queued job, now taken (it moves to `running` when the runner
    /// calls ``started(_:at:)``), or `nil` once closed and empty.
    func next() async -> Job? {
        await withCheckedContinuation { continuation in
            lock.lock()
            if head < queue.count {
                let job = queue[head]
                head += 1
                taken.insert(job.request.jobID)
                compact()
                lock.unlock()
                continuation.resume(returning: job)
            } else if closed {
                lock.unlock()
                continuation.resume(returning: nil)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    func started(_ id: String, at millis: Int64) {
        lock.withLock {
            taken.remove(id)
            running[id] = millis
        }
    }

    /// The job's result is published (or it was handed back): no longer held.
    func finished(_ id: String) {
        lock.withLock {
            taken.remove(id)
            running[id] = nil
            ids.remove(id)
        }
    }

    /// Takes no more jobs; returns the queued ones, which the caller hands
    /// back, and how many taken ones are still waiting for their batch (their
    /// runners hand them back when it comes: see ``isClosed``); wakes idle
    /// runners so they end.
    func close() -> (queued: [Job], waiting: Int) {
        lock.lock()
        closed = true
        let left = Array(queue[head...])
        queue = []
        head = 0
        for job in left { ids.remove(job.request.jobID) }
        let waiting = taken.count
        let idle = waiters
        waiters = []
        lock.unlock()
        for waiter in idle { waiter.resume(returning: nil) }
        return (left, waiting)
    }

    /// The worker is stopping: a job not started yet is handed back, not started.
    var isClosed: Bool { lock.withLock { closed } }

    /// Closed and nothing taken or running: the worker is done.
    var isDone: Bool { lock.withLock { closed && taken.isEmpty && running.isEmpty } }

    /// What the heartbeat reports.
    func snapshot() -> (queued: [String], running: [WorkerHeartbeat.Running]) {
        lock.withLock {
            (queue[head...].map(\.request.jobID) + taken.sorted(),
             running.map { WorkerHeartbeat.Running(jobID: $0.key, startedAt: $0.value) }.sorted { $0.startedAt < $1.startedAt })
        }
    }

    /// Drops consumed entries once they are most of the array.
    private func compact() {
        if head > 1024, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }
}
