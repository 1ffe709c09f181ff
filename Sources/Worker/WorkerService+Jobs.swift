import Foundation
import Inception
import Jobs
import Logging
import ModelRepository
import Metrics
import MQTT
import Observability
import ServiceLifecycle
import Synchronization
import TFServing
import Tracing

// Taking, running and answering jobs.
extension WorkerService {
    /// A ``Jobs/JobCancellation`` from the store.
    func noteCancellation(_ message: MQTTMessage) {
        guard let cancellation = try? JSONCoding.decoder.decode(JobCancellation.self, from: Data(message.payload)) else {
            logger.warning("ignored an unreadable cancellation on \(message.topic)")
            return
        }
        cancelled.insert(cancellation.jobID)
    }

        /// Decodes a request and queues it; a bad one, or one for a model or
    /// version this worker does not serve, is answered at once with a failed result.
    func receive(_ message: MQTTMessage) async {
        // The request's trace (traceparent user property), for its answer and its run.
        await ServiceContext.withValue(message.properties.extractTraceContext()) {
            await take(message)
        }
    }

    private func take(_ message: MQTTMessage) async {
        let request: JobRequest
        do {
            request = try JobRequest(message: message, maxBytes: configuration.maxRequestBytes)
        } catch {
            logger.warning("bad request on \(message.topic): \(error.reason)")
            await fail(jobID: error.jobID ?? JobID.make(), model: error.model ?? modelName, version: nil,
                       reason: "bad request: \(error.reason)", replyTopic: error.replyTopic,
                       correlation: message.properties.correlationData)
            return
        }
        if cancelled.contains(request.jobID) {
            logger.info("skipped job \(request.jobID): cancelled")
            return
        }
        guard registry.servable(request.model, version: request.version.map(Int64.init)) != nil else {
            let refusal = registry.refusal(model: request.model, version: request.version.map(Int64.init))
            logger.warning("refused job \(request.jobID): \(refusal)")
            await fail(jobID: request.jobID, model: request.model, version: request.version,
                       reason: "bad request: \(refusal)", replyTopic: request.replyTopic,
                       correlation: message.properties.correlationData)
            return
        }
        let job = HeldJobs.Job(request: request, correlation: message.properties.correlationData, arrivedAt: .now,
                               expirySeconds: message.properties.messageExpiryInterval.map { Int($0) },
                               trace: ServiceContext.current ?? .topLevel)
        switch held.add(job, limit: holdLimit) {
        case .added:
            break
        case .duplicate:
            logger.debug("job \(request.jobID) is already held here; duplicate delivery dropped")
        case .closed:
            await handBack(request, reason: "worker \(workerID) stopped before starting it")
        case .full:
            Task { await self.overflow(job) }
        }
    }

    /// How long a job that arrived beyond the prefetch bound waits before it is
    /// handed back, in case room frees up meanwhile (a hand-back costs the job a
    /// round through the store and the broker).
    static let overflowGrace: Duration = .seconds(1)

    /// A job that arrived beyond the prefetch bound: after ``overflowGrace`` it
    /// is held here if there is room by then, and handed back otherwise (not
    /// started here, so no attempt is counted; the ledger publishes it again at once).
    private func overflow(_ job: HeldJobs.Job) async {
        try? await Task.sleep(for: Self.overflowGrace)
        switch held.add(job, limit: holdLimit) {
        case .added, .duplicate:
            return
        case .closed:
            await handBack(job.request, reason: "worker \(workerID) stopped before starting it")
        case .full:
            await handBack(job.request, reason: "worker \(workerID) holds \(holdLimit) job(s), its prefetch bound", overflow: true)
        }
    }

    /// Runs one job: publishes its running event, classifies, publishes the result
    /// (or hands the job back if the attempt failed for a reason that is not the request's).
    /// Runs one job in a span ("run job", in the request's trace), with its
    /// time on the engine as a child span ("inference").
    func run(_ job: HeldJobs.Job) async {
        await withSpan("run job", context: job.trace, ofKind: .consumer) { span in
            span.attributes["conveyor.job_id"] = job.request.jobID
            span.attributes["conveyor.model"] = job.request.model
            await JobLogContext.withJob(job.request.jobID) { await runInSpan(job) }
        }
    }

    private func runInSpan(_ job: HeldJobs.Job) async {
        let request = job.request
        if cancelled.contains(request.jobID) {
            logger.info("skipped job \(request.jobID): cancelled")
            return
        }
        // A request whose v5 Message Expiry Interval (what was left of it when it arrived)
        // ran out before now, when a runner takes it, is answered `expired`.
        if let seconds = job.expirySeconds, ContinuousClock.now > job.arrivedAt + .seconds(seconds) {
            logger.notice("job \(request.jobID) expired before it was taken (message expiry \(seconds) s)")
            let result = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .expired,
                                   timings: JobTimings(queuedAt: request.submittedAt, finishedAt: Clock.nowMillis()),
                                   error: "expired: its message expiry interval (\(seconds) s left on arrival) ran out before a worker took it",
                                   worker: workerID)
            await publish(result, replyTopic: request.replyTopic, correlation: job.correlation)
            return
        }
        guard let servable = registry.servable(request.model, version: request.version.map(Int64.init)) else {
            // Unloaded while the job waited here: another worker may still serve it.
            await handBack(request, reason: "version unloaded from worker \(workerID) before the job started")
            return
        }
        let input: InferencePool.Input
        if request.tensorShape != nil, let values = request.tensorValues {
            input = .tensor(values)
        } else {
            input = .image([UInt8](request.image))
        }
        // The attempt begins when the job's batch is about to run on the engine.
        var startedAt: Int64?
        let finished = await pool.classify(input, on: servable, topK: request.topK, jobID: request.jobID,
                                           alone: suspects.contains(request.jobID)) {
            startedAt = await start(job, on: servable)
            return startedAt != nil
        }
        guard let outcome = finished else { return }  // withdrawn and handed back
        Self.recordStages(of: outcome)
        var result = JobResult(jobID: request.jobID, model: request.model, version: Int(servable.version), status: .failed,
                               timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt ?? outcome.startedAt,
                                                   finishedAt: Clock.nowMillis(),
                                                   inferenceMs: (outcome.milliseconds * 100).rounded() / 100,
                                                   receivedAt: job.receivedAt,
                                                   decodedAt: Int64(outcome.decoded.upperBound / 1_000_000),
                                                   inferredAt: outcome.inferred.map { Int64($0.upperBound / 1_000_000) }),
                               worker: workerID, batchSize: outcome.batchSize)
        switch outcome.predictions {
        case .success(let predictions):
            result.status = .succeeded
            result.top = predictions.map { ClassScore(index: $0.index, label: $0.label, score: $0.score) }
        case .failure(let error):
            result.error = error.description
        }
        await publish(result, replyTopic: request.replyTopic, correlation: job.correlation)
    }

    /// The pool's stages of one job as child spans of the current one, at the
    /// times they ran on the pool's threads: "decode" (decode, resize, scale)
    /// and "inference" (its batch on the engine, with the batch's size).
    private static func recordStages(of outcome: InferencePool.Outcome) {
        func span(_ name: String, _ interval: ClosedRange<UInt64>) -> any Span {
            let span = startSpan(name, at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: interval.lowerBound))
            return span
        }
        let decode = span("decode", outcome.decoded)
        if case .failure(let failure) = outcome.predictions, outcome.inferred == nil {
            decode.setStatus(SpanStatus(code: .error, message: failure.description))
        }
        decode.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: outcome.decoded.upperBound))
        if let inferred = outcome.inferred {
            let inference = span("inference", inferred)
            if let size = outcome.batchSize { inference.attributes["conveyor.batch_size"] = size }
            inference.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: inferred.upperBound))
        }
    }

    /// Starts a job's attempt as its batch is about to run: marks it running
    /// (for the heartbeat) and publishes its `running` event. Returns the start
    /// time, or `nil` when the job does not run after all (the worker is
    /// stopping, or an injected engine error: it is handed back).
    private func start(_ job: HeldJobs.Job, on servable: LoadedServable) async -> Int64? {
        let request = job.request
        if cancelled.contains(request.jobID) {
            // Cancelled while it waited for its batch: the batch runs without it.
            logger.info("skipped job \(request.jobID): cancelled")
            return nil
        }
        if held.isClosed {
            // Stopping: only batches already on the engine finish.
            await handBack(request, reason: "worker \(workerID) stopped before starting it")
            return nil
        }
        let startedAt = Clock.nowMillis()
        held.started(request.jobID, at: startedAt)
        let running = JobResult(jobID: request.jobID, model: request.model, version: Int(servable.version), status: .running,
                                timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt), worker: workerID)
        // Acknowledged before the batch runs: if the engine then crashes the process, the store
        // has counted this attempt, so a job that kills every worker ends after its attempts.
        try? await client.publish(Topics.event(job: request.jobID), payload: [UInt8](running.jsonPayload()), qos: 1)
        if let fault = configuration.faultInjection, fault.applies(to: request.jobID) {
            switch fault.mode {
            case .crash:
                logger.critical("injected crash on job \(request.jobID) (CONVEYOR_FAULT_INJECT)")
                _exit(70)
            case .throw:
                held.finished(request.jobID)  // a redelivery may come back here
                await handBack(request, reason: "\(InjectedFault())")
                return nil
            case .delay(let duration):
                // The batch waits with it, as on a slow machine.
                logger.notice("injected delay of \(duration) on job \(request.jobID) (CONVEYOR_FAULT_INJECT)")
                try? await Task.sleep(for: duration)
            }
        }
        return startedAt
    }

    /// Gives a job back to the ledger (an event with status `queued`), which
    /// publishes it again at once. An `overflow` hand-back (the worker is at
    /// its prefetch bound; it never started the job) is logged at debug level
    /// and sends no `error`, so that the ledger keeps the last error of a real
    /// attempt.
    func handBack(_ request: JobRequest, reason: String, overflow: Bool = false) async {
        let event = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .queued,
                              timings: JobTimings(queuedAt: request.submittedAt), error: overflow ? nil : reason,
                              worker: workerID)
        do {
            try await client.publish(Topics.event(job: request.jobID), payload: [UInt8](event.jsonPayload()), qos: 1)
            logger.log(level: overflow ? .debug : .notice, "handed back job \(request.jobID): \(reason)")
        } catch {
            // The ledger delivers it again when its lease ends.
            logger.warning("could not hand back job \(request.jobID) (the ledger redelivers it after its lease): \(error)")
        }
    }

    private func fail(jobID: String, model: String, version: Int?, reason: String, replyTopic: String?,
                      correlation: [UInt8]?) async {
        let result = JobResult(jobID: jobID, model: model, version: version, status: .failed,
                               timings: JobTimings(finishedAt: Clock.nowMillis()), error: reason, worker: workerID)
        await publish(result, replyTopic: replyTopic, correlation: correlation)
    }

    private func publish(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        await withSpan("publish result", ofKind: .producer) { span in
            span.attributes["conveyor.status"] = result.status.rawValue
            await publishInSpan(result, replyTopic: replyTopic, correlation: correlation)
        }
    }

    private func publishInSpan(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        if cancelled.contains(result.jobID) {
            // Cancelled while it ran: the store has already told its subscribers.
            logger.info("discarded the result of job \(result.jobID): cancelled while it ran")
            return
        }
        let payload = [UInt8](result.jsonPayload())
        var props = MQTTProperties()
        props.contentType = "application/json"
        // The store's record of the result joins the job's trace.
        props.injectTraceContext()
        do {
            try await client.publish(Topics.result(job: result.jobID), payload: payload, qos: 1, properties: props)
        } catch {
            logger.error("could not publish the result of \(result.jobID): \(error)")
        }
        if let replyTopic, replyTopic != Topics.result(job: result.jobID) {
            props.correlationData = correlation
            do {
                try await client.publish(replyTopic, payload: payload, qos: 1, properties: props)
            } catch {
                logger.warning("could not publish the result of \(result.jobID) to reply topic \(replyTopic): \(error)")
            }
        }
    }
}
