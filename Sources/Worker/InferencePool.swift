import Foundation
import Inception
import Jobs

/// Runs classifications on threads of its own, one `Classifier` (and so one
/// engine session) per thread, so inference never occupies Swift's
/// cooperative thread pool. `classify` suspends the caller until a thread has
/// done the work.
public final class InferencePool: @unchecked Sendable {
    // Sendable: the queue of pending work is guarded by `condition`; each
    // classifier is touched only by the thread that owns it.

    /// What one classification produced.
    public struct Outcome: Sendable {
        public var predictions: Result<[Prediction], ImageError>
        /// Decode + preprocess + inference, in milliseconds.
        public var milliseconds: Double
        public var startedAt: Int64
    }

    private struct Work {
        let image: [UInt8]
        let topK: Int
        let done: @Sendable (Outcome) -> Void
    }

    public let threads: Int
    public let model: Model
    private let condition = NSCondition()
    private var queue: [Work] = []
    private var stopping = false
    private var running = 0

    /// Starts `threads` inference threads for `model`.
    public init(model: Model, labels: Labels?, threads: Int, maxPixels: Int) {
        self.model = model
        self.threads = max(1, threads)
        for i in 0..<self.threads {
            let owned = Owned(Classifier(model: model, labels: labels, maxPixels: maxPixels))
            let thread = Thread { [self] in self.loop(owned.value) }
            thread.name = "conveyor-inference-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        condition.lock()
        running = self.threads
        condition.unlock()
    }

    /// Classifies one encoded image on an inference thread.
    public func classify(_ image: [UInt8], topK: Int) async -> Outcome {
        await withCheckedContinuation { continuation in
            condition.lock()
            queue.append(Work(image: image, topK: topK) { continuation.resume(returning: $0) })
            condition.signal()
            condition.unlock()
        }
    }

    /// Work waiting for a thread.
    public var backlog: Int {
        condition.lock(); defer { condition.unlock() }
        return queue.count
    }

    /// Lets the threads finish what is queued, then end.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop(_ classifier: Classifier) {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                running -= 1
                condition.unlock()
                return
            }
            let work = queue.removeFirst()
            condition.unlock()
            let startedAt = Clock.nowMillis()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let result = classifier.classify([work.image], top: work.topK)[0]
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            work.done(Outcome(predictions: result, milliseconds: ms, startedAt: startedAt))
        }
    }
}

/// A value handed to exactly one thread, which is the only one to use it.
private struct Owned<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
