import Foundation

/// A token bucket per client: each holds up to `burst` tokens and gains
/// `rate` per second. A request for `n` jobs is let through when the bucket
/// holds at least one token and takes `n` (the bucket may go into debt, so a
/// TF Serving request with many examples passes once and then slows its
/// client down); otherwise it is refused (HTTP 429, gRPC RESOURCE_EXHAUSTED).
///
/// `@unchecked Sendable`: the buckets are only touched with `lock` held.
final class RateLimiter: @unchecked Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    let rate: Double
    let burst: Double
    private let lock = NSLock()
    private var buckets: [String: Bucket] = [:]
    private var lastPrune = 0.0

    /// `rate` requests per second per client, bursts of `burst`.
    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(max(1, burst))
    }

    /// Takes a token for `client`. Returns `nil` if allowed, else the seconds
    /// until the next token (for `Retry-After`).
    func take(_ client: String, jobs: Int = 1, now: Double = ProcessInfo.processInfo.systemUptime) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        defer { buckets[client] = bucket }
        if now - lastPrune > 60 { prune(now) }
        if bucket.tokens >= 1 {
            bucket.tokens -= Double(max(1, jobs))
            return nil
        }
        return (1 - bucket.tokens) / rate
    }

    /// Forgets clients whose bucket is full again (they would start full anyway).
    private func prune(_ now: Double) {
        lastPrune = now
        buckets = buckets.filter { min(burst, $0.value.tokens + (now - $0.value.updated) * rate) < burst }
    }
}
