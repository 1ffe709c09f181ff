import Foundation
import Jobs
import Logging
import MQTT

/// Wakes long-polling requests when their job's result is published: one
/// subscription to every result topic, and a list of waiters per job id.
final class ResultWatcher: @unchecked Sendable {
    // Sendable: `waiters` is only touched under `lock`.
    private let lock = NSLock()
    private var waiters: [String: [UUID: CheckedContinuation<JobResult?, Never>]] = [:]

    /// Delivers results from the subscription until it ends.
    func run(_ subscription: MQTTSubscription, logger: Logger) async {
        for await message in subscription {
            guard let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload)),
                  result.status.isTerminal else { continue }
            let waiting = lock.withLock { waiters.removeValue(forKey: result.jobID) ?? [:] }
            for continuation in waiting.values { continuation.resume(returning: result) }
        }
        logger.debug("result subscription ended")
    }

    /// Waits up to `timeout` for job `id`'s terminal result; nil if none came.
    func wait(for id: String, timeout: Duration) async -> JobResult? {
        let token = UUID()
        return await withCheckedContinuation { continuation in
            lock.lock()
            waiters[id, default: [:]][token] = continuation
            lock.unlock()
            // Registered before the timer starts, so a short timeout cannot miss it.
            Task {
                try? await Task.sleep(for: timeout)
                let pending = self.lock.withLock {
                    let pending = self.waiters[id]?.removeValue(forKey: token)
                    if self.waiters[id]?.isEmpty == true { self.waiters[id] = nil }
                    return pending
                }
                pending?.resume(returning: nil)
            }
        }
    }
}
