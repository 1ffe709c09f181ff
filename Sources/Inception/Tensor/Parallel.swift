import Dispatch

/// Splits loops over the engine's own threads (the `WorkerPool`'s, or
/// Dispatch's worker threads when the pool is taken; never Swift's
/// cooperative pool).
package enum Parallel {
    /// Threads used by the engine's own loops (im2col, pooling, epilogues).
    nonisolated(unsafe) package static var threads = 1
    // Written once at start-up by `Engine.configure`, before any inference.

    /// Whether a product [rows × inner]·[inner × columns] shared among the
    /// threads should give each thread a block of columns (every thread packs
    /// the whole left matrix, the activations, already in cache) rather than
    /// a block of rows (every thread packs the whole right matrix, the
    /// weights, which come from memory and count double).
    package static func splitsColumns(rows: Int, inner: Int, columns: Int) -> Bool {
        let activations = rows * inner, weights = inner * columns
        return threads * activations + 2 * weights < 2 * threads * weights + activations
    }

    /// Runs `body(range)` over `0..<count` split into about `threads` chunks.
    /// Small loops run inline.
    @inline(__always)
    package static func forEachChunk(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(1, minChunk)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        let step = (count + parts - 1) / parts
        let ran = WorkerPool.shared.run(parts: parts) { part in
            let start = part * step
            let end = min(count, start + step)
            if start < end { body(start..<end) }
        }
        if ran { return }
        withoutActuallyEscaping(body) { body in
            let task = Task(body: body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = part * step
                let end = min(count, start + step)
                if start < end { task.body(start..<end) }
            }
        }
    }

    /// Runs `body(thread, count)` once for each of `count` threads, in parallel.
    @inline(__always)
    package static func forEachThread(_ count: Int, _ body: (Int, Int) -> Void) {
        if count <= 1 {
            body(0, 1)
            return
        }
        if WorkerPool.shared.run(parts: count, { body($0, count) }) { return }
        withoutActuallyEscaping(body) { body in
            let task = ThreadTask(body: body)
            DispatchQueue.concurrentPerform(iterations: count) { task.body($0, count) }
        }
    }

    /// Like `Task`, for `forEachThread`.
    private struct ThreadTask: @unchecked Sendable {
        let body: (Int, Int) -> Void
    }

    /// The loop body, handed to Dispatch's threads. Safe to share: every
    /// thread works on its own disjoint range, and `concurrentPerform`
    /// returns only after all of them have finished.
    private struct Task: @unchecked Sendable {
        let body: (Range<Int>) -> Void
    }
}
