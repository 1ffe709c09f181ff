import Foundation
import Inception
import Jobs
import Logging
import MQTT
import ServiceLifecycle

/// A stateless inference worker: takes requests from the model's shared
/// subscription, classifies them on its own threads and publishes each result
/// (QoS 1) to the job's result topic, and to the request's reply topic if it
/// named one. Anything wrong with a request becomes a `failed` result with the
/// reason; nothing a client sends can stop the worker.
///
/// Every message is taken off the subscription as it arrives and held in
/// order until an inference thread is free; a heartbeat on
/// ``Jobs/Topics/workerHeartbeat(worker:)`` lists what is held, so the
/// ledger does not publish a backlog again while this worker lives. A
/// duplicate delivery of a job already held is dropped. On graceful shutdown
/// (SIGTERM) the worker unsubscribes, finishes the jobs it is running, hands
/// the queued ones back to the ledger (published again at once) and returns.
public final class WorkerService: Service {
    public let configuration: WorkerConfiguration
    public let modelName: String
    /// The loaded model (shared with nothing else; read-only).
    public var model: Model { pool.model }
    /// The class names results carry.
    public let labels: Labels
    private let pool: InferencePool
    private let client: MQTTClient
    private let logger: Logger
    private let workerID: String

    /// Loads the model and starts the inference threads (the slow part, done once).
    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "conveyor.worker")) throws {
        self.configuration = configuration
        self.logger = logger
        let model = try Model(contentsOf: configuration.modelPath)
        let labels = try Labels.load(configuration.labelsPath, forModel: configuration.modelPath, classes: model.outputCount)
        self.labels = labels ?? .indices(model.outputCount)
        modelName = configuration.modelName ?? model.name
        let concurrency = max(1, configuration.concurrency)
        Engine.configure(threads: configuration.engineThreads ?? max(1, Engine.cores / concurrency))
        pool = InferencePool(model: model, labels: labels, threads: concurrency, maxPixels: configuration.maxPixels)
        workerID = configuration.broker.clientID
        client = MQTTClient(configuration.broker, logger: logger)
        logger.info("worker \(workerID) serves model \(modelName) from \(configuration.modelPath) with \(concurrency) inference thread(s); labels: \(labels?.source ?? "none (class indices)")")
    }

    public func run() async throws {
        if let fault = configuration.faultInjection {
            logger.critical("FAULT INJECTION ON (CONVEYOR_FAULT_INJECT): jobs whose id starts with '\(fault.jobIDPrefix)' will \(fault.mode == .crash ? "crash this worker" : "fail with an engine error")")
        }
        try await client.connect()
        let filters = [Topics.workerSubscription(model: modelName, group: configuration.group),
                       Topics.deviceWorkerSubscription(model: modelName, group: configuration.group)]
        var subscribed: [MQTTSubscription] = []
        for filter in filters {
            subscribed.append(try await client.subscribe(filter, qos: 1))
            logger.info("worker \(workerID) subscribed to \(filter)")
        }
        let subscriptions = subscribed
        let held = HeldJobs()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // Receiving: every message is taken at once (libmosquitto has acknowledged it
                // already) and stamped with its arrival (a request's message expiry counts the
                // time it waits here too), so the heartbeat can list it; runners take them in order.
                group.addTask {
                    await withDiscardingTaskGroup { receivers in
                        for subscription in subscriptions {
                            receivers.addTask {
                                for await message in subscription { await self.receive(message, into: held) }
                            }
                        }
                    }
                    // Stopping (or the connection is gone for good): hand back what no runner took.
                    let left = held.close()
                    if !left.isEmpty { self.logger.info("worker \(self.workerID) hands back \(left.count) queued job(s)") }
                    await withDiscardingTaskGroup { handBacks in
                        for job in left {
                            handBacks.addTask { await self.handBack(job.request, reason: "worker \(self.workerID) stopped before starting it") }
                        }
                    }
                }
                for _ in 0..<pool.threads {
                    group.addTask {
                        while let job = await held.next() {
                            await self.run(job, held: held)
                            held.finished(job.request.jobID)
                        }
                    }
                }
                group.addTask {
                    try? await cancelWhenGracefulShutdown { await self.heartbeatLoop(held) }
                }
            }
        } onGracefulShutdown: {
            // Stop taking new requests; the ones running finish and are published, the
            // queued ones are handed back to the ledger.
            Task { for subscription in subscriptions { await subscription.cancel() } }
        }
        pool.shutdown()
        await client.disconnect()
        logger.info("worker \(workerID) stopped")
    }

    /// Publishes the held jobs every `heartbeatInterval` (QoS 0: the next one replaces a lost one).
    private func heartbeatLoop(_ held: HeldJobs) async {
        let topic = Topics.workerHeartbeat(worker: workerID)
        while !Task.isCancelled && !held.isDone {
            let (queued, running) = held.snapshot()
            let beat = WorkerHeartbeat(worker: workerID, model: modelName, queued: queued, running: running, at: Clock.nowMillis())
            if let payload = try? JSONCoding.encoder.encode(beat) {
                try? await client.publish(topic, payload: [UInt8](payload), qos: 0)
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Decodes a request and queues it; a bad one is answered at once with a failed result.
    func receive(_ message: MQTTMessage, into held: HeldJobs) async {
        let request: JobRequest
        do {
            request = try JobRequest(message: message, maxBytes: configuration.maxRequestBytes)
        } catch {
            logger.warning("bad request on \(message.topic): \(error.reason)")
            let id = error.jobID ?? JobID.make()
            let result = JobResult(jobID: id, model: error.model ?? modelName, status: .failed,
                                   timings: JobTimings(finishedAt: Clock.nowMillis()),
                                   error: "bad request: \(error.reason)", worker: workerID)
            await publish(result, replyTopic: error.replyTopic, correlation: message.properties.correlationData)
            return
        }
        if let refusal = refusal(of: request) {
            logger.warning("refused job \(request.jobID): \(refusal)")
            let result = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .failed,
                                   timings: JobTimings(queuedAt: request.submittedAt, finishedAt: Clock.nowMillis()),
                                   error: "bad request: \(refusal)", worker: workerID)
            await publish(result, replyTopic: request.replyTopic, correlation: message.properties.correlationData)
            return
        }
        let job = HeldJobs.Job(request: request, correlation: message.properties.correlationData, arrivedAt: .now,
                               expirySeconds: message.properties.messageExpiryInterval.map { Int($0) })
        if !held.add(job) {
            logger.debug("job \(request.jobID) is already held here; duplicate delivery dropped")
        }
    }

    /// Runs one job: publishes its running event, classifies, publishes the result
    /// (or hands the job back if the attempt failed for a reason that is not the request's).
    private func run(_ job: HeldJobs.Job, held: HeldJobs) async {
        let request = job.request
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
        let startedAt = Clock.nowMillis()
        held.started(request.jobID, at: startedAt)
        var running = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .running,
                                timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt), worker: workerID)
        try? await client.publish(Topics.event(job: request.jobID), payload: [UInt8](running.jsonPayload()), qos: 1)
        if let fault = configuration.faultInjection, fault.applies(to: request.jobID) {
            switch fault.mode {
            case .crash:
                logger.critical("injected crash on job \(request.jobID) (CONVEYOR_FAULT_INJECT)")
                _exit(70)
            case .throw:
                held.finished(request.jobID)  // a redelivery may come back here
                await handBack(request, reason: "\(InjectedFault())")
                return
            }
        }
        let outcome = await pool.classify([UInt8](request.image), topK: request.topK)
        running.timings.finishedAt = Clock.nowMillis()
        running.timings.inferenceMs = (outcome.milliseconds * 100).rounded() / 100
        switch outcome.predictions {
        case .success(let predictions):
            running.status = .succeeded
            running.top = predictions.map { ClassScore(index: $0.index, label: $0.label, score: $0.score) }
        case .failure(let error):
            running.status = .failed
            running.error = "bad image: \(error)"
        }
        await publish(running, replyTopic: request.replyTopic, correlation: job.correlation)
    }

    /// Gives a job back to the ledger (an event with status `queued`), which
    /// publishes it again at once.
    private func handBack(_ request: JobRequest, reason: String) async {
        let event = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .queued,
                              timings: JobTimings(queuedAt: request.submittedAt), error: reason, worker: workerID)
        do {
            try await client.publish(Topics.event(job: request.jobID), payload: [UInt8](event.jsonPayload()), qos: 1)
            logger.notice("handed back job \(request.jobID): \(reason)")
        } catch {
            // The ledger delivers it again when its lease ends.
            logger.warning("could not hand back job \(request.jobID) (the ledger redelivers it after its lease): \(error)")
        }
    }

    /// Why this worker cannot run a well-formed request: a model or version it does not serve.
    /// A worker serves one model, as version 1 (``modelVersion``).
    func refusal(of request: JobRequest) -> String? {
        if request.model != modelName {
            return "unknown model '\(request.model)': this worker serves '\(modelName)'"
        }
        if let version = request.version, version != Self.modelVersion {
            return "unknown version \(version) of model '\(modelName)': served versions: [\(Self.modelVersion)]"
        }
        return nil
    }

    /// The version number of the model a worker serves (one version per worker for now).
    public static let modelVersion = 1

    private func publish(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        let payload = [UInt8](result.jsonPayload())
        var props = MQTTProperties()
        props.contentType = "application/json"
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
