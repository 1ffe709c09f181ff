import Foundation
import Inception
import Jobs
import Metrics
import Tracing

/// Runs classifications on threads of its own, so decoding and inference
/// never occupy Swift's cooperative thread pool. A request goes through two
/// stages:
///
/// 1. a decode thread turns it into model input (JPEG decode, resize and
///    scaling, or a check of the tensor's values). A request that fails here
///    is answered at once and never reaches the engine, so a bad image fails
///    alone;
/// 2. an inference thread takes up to `maxBatchSize` prepared requests for the
///    same loaded version — a batch never mixes models or versions — waiting
///    at most `batchTimeout` for more while fewer are ready, and runs them as
///    one engine batch. Each request gets its own predictions.
///
/// Before a batch runs, each of its callers is told (its `starting` closure
/// runs, and the batch waits for all of them): that is when the request's
/// attempt begins, so a worker marks a job as started only once it is in a
/// batch on the engine, and can still withdraw it. With a ``BatchJournal``,
/// each batch's job ids are written down before it starts; a request
/// submitted `alone` (it was in a batch that crashed) always runs by itself.
///
/// Decoding the next requests overlaps the engine's work on the current
/// batch. Each inference thread keeps one `Classifier` (an engine session and
/// its buffers) per version it has run, each decode thread one preprocessor;
/// both are dropped once that version is unloaded. `classify` suspends the
/// caller until its request is done.
public final class InferencePool: @unchecked Sendable {
    // Sendable: the queues and counters are guarded by `condition`; each
    // thread's classifiers and preprocessors are touched only by that thread.

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
        /// This request's share of the work, in milliseconds: its own decode
        /// and preprocessing time plus its batch's engine time divided by the
        /// batch's size (only the decode time for a request that failed there).
        public var milliseconds: Double
        /// When its batch started on the engine (or its decode, if that failed),
        /// in milliseconds since 1970.
        public var startedAt: Int64
        /// How many requests ran in its engine batch; `nil` when it failed
        /// before reaching the engine.
        public var batchSize: Int?
        /// When its decode (and preprocessing) ran, in wall-clock nanoseconds
        /// since 1970 (for the worker's "decode" span).
        public var decoded: ClosedRange<UInt64>
        /// When its batch ran on the engine, likewise; `nil` if it never did.
        public var inferred: ClosedRange<UInt64>?
    }

    private struct Work {
        let input: Input
        let servable: LoadedServable
        let topK: Int
        let jobID: String
        let alone: Bool
        let ticket: PoolTicket
        var key: ObjectIdentifier { ObjectIdentifier(servable) }
    }

    /// A decoded request waiting for a batch.
    private struct Prepared {
        let work: Work
        let values: [Float]
        let decodeMilliseconds: Double
        let decoded: ClosedRange<UInt64>
    }

    /// Something a thread built for one loaded version, dropped with it.
    private final class PerVersion<Value> {
        weak var servable: LoadedServable?
        let value: Value
        init(_ servable: LoadedServable, _ value: Value) {
            self.servable = servable
            self.value = value
        }
    }

    /// Inference threads, i.e. batches run at once.
    public let threads: Int
    /// The most requests one engine batch holds.
    public let maxBatchSize: Int
    private var busyNanoseconds: UInt64 = 0

    /// Engine time spent so far, summed over the inference threads (for the
    /// busy ratio: its growth over an interval ÷ (interval × threads)).
    public var busyTime: Duration {
        condition.lock()
        defer { condition.unlock() }
        return .nanoseconds(Int64(busyNanoseconds))
    }
    /// The longest an inference thread waits for a batch to fill.
    public let batchTimeout: Duration
    private let maxPixels: Int
    private let journal: BatchJournal?
    private let condition = NSCondition()
    /// Requests waiting for a decode thread.
    private var incoming: [Work] = []
    /// Requests being decoded right now.
    private var decoding = 0
    /// Decoded requests waiting for a batch, in order.
    private var ready: [Prepared] = []
    /// Versions an inference thread is filling a batch for; other threads leave them be.
    private var collecting: Set<ObjectIdentifier> = []
    private var stopping = false

    /// Starts `threads` inference threads and as many decode threads.
    /// - Parameters:
    ///   - maxBatchSize: the most requests run as one engine batch (1: each alone).
    ///   - batchTimeout: how long a thread holding fewer than `maxBatchSize`
    ///     requests for a version waits for more before it runs them (zero:
    ///     runs what is there).
    ///   - journal: where each batch's job ids are written before it runs.
    init(threads: Int, maxPixels: Int, maxBatchSize: Int = 1, batchTimeout: Duration = .zero, journal: BatchJournal? = nil) {
        self.threads = max(1, threads)
        self.maxPixels = maxPixels
        self.journal = journal
        self.maxBatchSize = max(1, maxBatchSize)
        self.batchTimeout = max(batchTimeout, .zero)
        for i in 0..<self.threads {
            let decoder = Thread { [self] in self.decodeLoop() }
            decoder.name = "conveyor-decode-\(i)"
            decoder.stackSize = 1 << 20
            decoder.start()
            let inference = Thread { [self] in self.inferenceLoop(thread: i) }
            inference.name = "conveyor-inference-\(i)"
            inference.stackSize = 1 << 20
            inference.start()
        }
    }

    /// Classifies one input with `servable`, in a batch with other requests for
    /// the same version when there are some.
    ///
    /// `starting` runs once the request's batch is about to run on the engine
    /// (not for a request that fails to decode); the batch waits until every
    /// request's `starting` has returned. Returning `false` withdraws the
    /// request from its batch, and `classify` then returns `nil`. `jobID`
    /// names the request in the journal; an `alone` request runs in a batch
    /// of its own.
    public func classify(_ input: Input, on servable: LoadedServable, topK: Int, jobID: String, alone: Bool = false,
                         starting: () async -> Bool) async -> Outcome? {
        let ticket = PoolTicket()
        condition.withLock {
            incoming.append(Work(input: input, servable: servable, topK: topK, jobID: jobID, alone: alone, ticket: ticket))
            condition.broadcast()
        }
        switch await ticket.stage() {
        case .done(let outcome):
            return outcome
        case .batchStarting:
            let go = await starting()
            ticket.answer(go)
            return go ? await ticket.outcome() : nil
        }
    }

    /// Lets the threads finish what is queued, then end.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    // MARK: - Decoding

    private func decodeLoop() {
        var preprocessors: [ObjectIdentifier: PerVersion<ImagePreprocessor>] = [:]
        while true {
            condition.lock()
            while incoming.isEmpty && !stopping { condition.wait() }
            if incoming.isEmpty {
                condition.unlock()
                return
            }
            let work = incoming.removeFirst()
            decoding += 1
            condition.unlock()

            preprocessors = preprocessors.filter { $0.value.servable != nil }
            let startedAt = Clock.nowMillis()
            let wall0 = DefaultTracerClock.now.nanosecondsSinceEpoch
            let t0 = DispatchTime.now().uptimeNanoseconds
            let values = prepare(work, preprocessors: &preprocessors)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            let decoded = wall0...max(wall0, DefaultTracerClock.now.nanosecondsSinceEpoch)

            condition.lock()
            decoding -= 1
            if case .success(let values) = values {
                ready.append(Prepared(work: work, values: values, decodeMilliseconds: ms, decoded: decoded))
            }
            condition.broadcast()
            condition.unlock()
            if case .failure(let failure) = values {
                work.ticket.reach(.done(Outcome(predictions: .failure(failure), milliseconds: ms, startedAt: startedAt, batchSize: nil,
                                                decoded: decoded, inferred: nil)))
            }
        }
    }

    /// The model input for one request, or why there is none.
    private func prepare(_ work: Work,
                         preprocessors: inout [ObjectIdentifier: PerVersion<ImagePreprocessor>]) -> Result<[Float], Failure> {
        let model = work.servable.model
        switch work.input {
        case .image(let bytes):
            guard model.takesImages else {
                return .failure(Failure(description: "bad image: \(ImageError.notAnImageModel(inputShape: model.inputDims))"))
            }
            let preprocessor: ImagePreprocessor
            if let cached = preprocessors[work.key] {
                preprocessor = cached.value
            } else {
                let s = model.inputShape
                preprocessor = ImagePreprocessor(width: s.width, height: s.height, channels: s.channels,
                                                 mode: model.preprocessing, maxPixels: maxPixels)
                preprocessors[work.key] = PerVersion(work.servable, preprocessor)
            }
            do throws(ImageError) {
                return .success(try preprocessor.prepare(bytes))
            } catch {
                return .failure(Failure(description: "bad image: \(error)"))
            }
        case .tensor(let values):
            let expected = model.inputShape.count
            guard values.count == expected else {
                return .failure(Failure(description: "bad tensor: \(values.count) values; model \(work.servable.name) takes \(expected)"))
            }
            guard values.allSatisfy(\.isFinite) else {
                return .failure(Failure(description: "bad tensor: values must be finite numbers"))
            }
            return .success(values)
        }
    }

    // MARK: - Batches

    private func inferenceLoop(thread: Int) {
        var classifiers: [ObjectIdentifier: PerVersion<Classifier>] = [:]
        while let batch = nextBatch() {
            // Versions that were unloaded (nothing else holds them) free their sessions.
            classifiers = classifiers.filter { $0.value.servable != nil }
            let first = batch[0].work
            let classifier: Classifier
            if let cached = classifiers[first.key] {
                classifier = cached.value
            } else {
                classifier = Classifier(model: first.servable.model, labels: first.servable.labels, maxPixels: maxPixels)
                classifiers[first.key] = PerVersion(first.servable, classifier)
            }
            journal?.record(batch.map(\.work.jobID), thread: thread)
            run(batch, on: classifier)
            journal?.clear(thread: thread)
        }
    }

    /// The next batch: the oldest ready request that no other thread is
    /// collecting for, with the ready requests of its version behind it (up to
    /// `maxBatchSize`), after waiting up to `batchTimeout` for the batch to
    /// fill; an `alone` request by itself. `nil` once stopping with nothing left.
    private func nextBatch() -> [Prepared]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let index = ready.firstIndex(where: { $0.work.alone || !collecting.contains($0.work.key) }) {
                if ready[index].work.alone { return [ready.remove(at: index)] }
                let key = ready[index].work.key
                if maxBatchSize > 1, batchTimeout > .zero, !stopping, readyCount(key) < maxBatchSize {
                    collecting.insert(key)
                    let deadline = Date(timeIntervalSinceNow: Double(batchTimeout.components.seconds)
                                        + Double(batchTimeout.components.attoseconds) / 1e18)
                    while readyCount(key) < maxBatchSize, !stopping, condition.wait(until: deadline) {}
                    collecting.remove(key)
                }
                var batch: [Prepared] = []
                var rest: [Prepared] = []
                for item in ready {
                    if batch.count < maxBatchSize, item.work.key == key, !item.work.alone { batch.append(item) } else { rest.append(item) }
                }
                ready = rest
                // What is left (another version, or more than one batch) is for the other threads.
                if !ready.isEmpty { condition.broadcast() }
                return batch
            }
            if stopping, ready.isEmpty, incoming.isEmpty, decoding == 0 { return nil }
            condition.wait()
        }
    }

    private func readyCount(_ key: ObjectIdentifier) -> Int {
        ready.reduce(0) { $0 + ($1.work.key == key && !$1.work.alone ? 1 : 0) }
    }

    /// Tells the batch's callers it starts, leaves out those that withdraw,
    /// runs the rest as one engine call and answers each request: its top-k,
    /// from the batch's top max-k (the predictions are sorted best first).
    private func run(_ all: [Prepared], on classifier: Classifier) {
        for item in all { item.work.ticket.reach(.batchStarting) }
        let batch = all.filter { $0.work.ticket.waitForAnswer() }
        guard !batch.isEmpty else { return }
        let classes = classifier.model.outputCount
        var input: [Float] = []
        input.reserveCapacity(batch.count * classifier.model.inputShape.count)
        for item in batch { input.append(contentsOf: item.values) }
        let k = min(max(batch.map(\.work.topK).max() ?? 1, 1), classes)
        let startedAt = Clock.nowMillis()
        let wall0 = DefaultTracerClock.now.nanosecondsSinceEpoch
        let t0 = DispatchTime.now().uptimeNanoseconds
        let predictions = classifier.classify(tensors: input, batch: batch.count, top: k)
        let elapsed = DispatchTime.now().uptimeNanoseconds - t0
        let inferred = wall0...(wall0 + elapsed)
        let share = Double(elapsed) / 1e6 / Double(batch.count)
        condition.lock()
        busyNanoseconds += elapsed
        condition.unlock()
        Timer(label: "conveyor_inference_seconds",
              dimensions: [("model", batch[0].work.servable.name), ("batch_size", String(batch.count))])
            .recordNanoseconds(Int64(elapsed))
        for (item, top) in zip(batch, predictions) {
            let own = min(max(item.work.topK, 1), k)
            item.work.ticket.finish(Outcome(predictions: .success(Array(top.prefix(own))),
                                            milliseconds: share + item.decodeMilliseconds,
                                            startedAt: startedAt, batchSize: batch.count,
                                            decoded: item.decoded, inferred: inferred))
        }
    }
}
