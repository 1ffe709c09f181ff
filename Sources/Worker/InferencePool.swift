import Foundation
import Inception
import Jobs

/// Runs classifications on threads of its own, so inference never occupies
/// Swift's cooperative thread pool. Each thread keeps one `Classifier` (an
/// engine session and its buffers) per model version it has run, and drops
/// it once that version is unloaded. `classify` suspends the caller until a
/// thread has done the work.
public final class InferencePool: @unchecked Sendable {
    // Sendable: the queue of pending work is guarded by `condition`; each
    // thread's classifiers are touched only by that thread.

    /// What a request asks the model to read.
    public enum Input: Sendable {
        /// An encoded image (JPEG).
        case image([UInt8])
        /// Model input values, of the model's input size.
        case tensor([Float])
    }

    /// Why a request could not be classified (its job fails with this reason).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// What one classification produced.
    public struct Outcome: Sendable {
        public var predictions: Result<[Prediction], Failure>
        /// Decode + preprocess + inference, in milliseconds.
        public var milliseconds: Double
        public var startedAt: Int64
    }

    private struct Work {
        let input: Input
        let servable: LoadedServable
        let topK: Int
        let done: @Sendable (Outcome) -> Void
    }

    public let threads: Int
    private let maxPixels: Int
    private let condition = NSCondition()
    private var queue: [Work] = []
    private var stopping = false
    private var running = 0

    /// Starts `threads` inference threads.
    public init(threads: Int, maxPixels: Int) {
        self.threads = max(1, threads)
        self.maxPixels = maxPixels
        for i in 0..<self.threads {
            let thread = Thread { [self] in self.loop() }
            thread.name = "conveyor-inference-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        condition.lock()
        running = self.threads
        condition.unlock()
    }

    /// Classifies one input with `servable` on an inference thread.
    public func classify(_ input: Input, on servable: LoadedServable, topK: Int) async -> Outcome {
        await withCheckedContinuation { continuation in
            condition.lock()
            queue.append(Work(input: input, servable: servable, topK: topK) { continuation.resume(returning: $0) })
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

    private final class Slot {
        weak var servable: LoadedServable?
        let classifier: Classifier
        init(_ servable: LoadedServable, _ classifier: Classifier) {
            self.servable = servable
            self.classifier = classifier
        }
    }

    private func loop() {
        var slots: [ObjectIdentifier: Slot] = [:]
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
            // Versions that were unloaded (nothing else holds them) free their sessions.
            slots = slots.filter { $0.value.servable != nil }
            let id = ObjectIdentifier(work.servable)
            let classifier: Classifier
            if let slot = slots[id] {
                classifier = slot.classifier
            } else {
                classifier = Classifier(model: work.servable.model, labels: work.servable.labels, maxPixels: maxPixels)
                slots[id] = Slot(work.servable, classifier)
            }
            let startedAt = Clock.nowMillis()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let result = Self.run(work, on: classifier)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            work.done(Outcome(predictions: result, milliseconds: ms, startedAt: startedAt))
        }
    }

    private static func run(_ work: Work, on classifier: Classifier) -> Result<[Prediction], Failure> {
        let k = min(max(work.topK, 1), classifier.model.outputCount)
        switch work.input {
        case .image(let bytes):
            return classifier.classify([bytes], top: k)[0].mapError { Failure(description: "bad image: \($0)") }
        case .tensor(let values):
            let expected = classifier.model.inputShape.count
            guard values.count == expected else {
                return .failure(Failure(description: "bad tensor: \(values.count) values; model \(work.servable.name) takes \(expected)"))
            }
            guard values.allSatisfy(\.isFinite) else {
                return .failure(Failure(description: "bad tensor: values must be finite numbers"))
            }
            return .success(classifier.classify(tensors: values, batch: 1, top: k)[0])
        }
    }
}
