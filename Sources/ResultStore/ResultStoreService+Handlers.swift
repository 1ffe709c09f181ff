import Foundation
import Jobs
import StoreClient
import Logging
import MQTT
import Observability
import ServiceLifecycle
import Tracing

extension ResultStoreService {
    // MARK: - Handlers

    /// Ledger: records a request as queued. Returns the ``Jobs/LedgerReceipt``
    /// to send and where, when the request asked for one (only requests on the
    /// service request topics may, and only to a store reply topic); the
    /// receipt says whether the request is now committed.
    @discardableResult
    func handleRequest(_ message: MQTTMessage) async -> (topic: String, receipt: LedgerReceipt)? {
        let receiptTopic = message.properties.userProperty(LedgerReceipt.userProperty)
            .flatMap { Topics.isStoreReply($0) && Topics.requestTarget(fromTopic: message.topic) != nil ? $0 : nil }
        // Part of the job's trace when the request carries one (traceparent user property).
        let outcome = await withSpan("record request", context: message.properties.extractTraceContext(), ofKind: .consumer) { span in
            let outcome = await record(message)
            if let id = outcome.jobID { span.attributes["conveyor.job_id"] = id }
            if let error = outcome.error { span.setStatus(SpanStatus(code: .error, message: error)) }
            return outcome
        }
        guard let receiptTopic, let jobID = outcome.jobID else { return nil }
        return (receiptTopic, LedgerReceipt(jobID: jobID, error: outcome.error))
    }

    /// Sends a ledger receipt (QoS 0: a lost one only makes the front end
    /// refuse a job that will still run).
    func send(_ receipt: LedgerReceipt, to topic: String, client: MQTTClient) async {
        var properties = MQTTProperties()
        properties.correlationData = LedgerReceipt.correlation(jobID: receipt.jobID)
        properties.contentType = "application/json"
        do {
            try await client.publish(topic, payload: receipt.jsonPayload(), qos: 0, properties: properties)
        } catch {
            logger.warning("ledger: cannot send a receipt", metadata: ["job_id": "\(receipt.jobID)", "error": "\(error)"])
        }
    }

    /// Records a request; returns its job id (when it could be read) and why
    /// it is not in the ledger, if it is not.
    private func record(_ message: MQTTMessage) async -> (jobID: String?, error: String?) {
        if JobRequest.isBinary(message), message.properties.userProperty("job_id") == nil,
           Topics.deviceRequest(fromTopic: message.topic) == nil {
            // The worker makes up an id for these; the store learns it from the result.
            logger.debug("ledger: binary request without job_id", metadata: ["topic": "\(message.topic)"])
            return (nil, nil)
        }
        let request: JobRequest
        do {
            request = try JobRequest(message: message)
        } catch {
            logger.notice("ledger: skipping undecodable request",
                          metadata: ["topic": "\(message.topic)", "job_id": "\(error.jobID ?? "?")",
                                     "reason": "\(error.reason)"])
            return (error.jobID, "bad request: \(error.reason)")
        }
        do {
            let new = try await ledger.record(LedgerEntry(request, message: message))
            if let early = earlyHandBacks.take(request.jobID) {
                try await database.handedBack(request.jobID, reason: early.reason)
            }
            if new, Topics.deviceRequest(fromTopic: message.topic) != nil { StoreMetrics.deviceJobSubmitted(model: request.model) }
            return (request.jobID, nil)
        } catch {
            logger.error("ledger: cannot record request", metadata: ["job_id": "\(request.jobID)", "error": "\(error)"])
            return (request.jobID, "the ledger cannot record the request")
        }
    }

    /// Results: records a result (first terminal wins).
    func handleResult(_ message: MQTTMessage) async {
        guard let result = decodeResult(message, kind: "result") else { return }
        await withSpan("record result", context: message.properties.extractTraceContext(), ofKind: .consumer) { span in
            span.attributes["conveyor.job_id"] = result.jobID
            span.attributes["conveyor.status"] = result.status.rawValue
            await record(result)
        }
    }

    private func record(_ result: JobResult) async {
        do {
            let applied: Bool
            if result.status.isTerminal {
                let record = try await database.recordTerminal(result)
                if let record { StoreMetrics.jobFinished(record, now: Clock.nowMillis()) }
                applied = record != nil
            } else {
                applied = try await database.recordResult(result)
            }
            logger.debug("result", metadata: ["job_id": "\(result.jobID)", "status": "\(result.status.rawValue)",
                                              "applied": "\(applied)"])
        } catch {
            logger.error("cannot record result", metadata: ["job_id": "\(result.jobID)", "error": "\(error)"])
        }
    }

    /// Events: records a worker taking a job.
    func handleEvent(_ message: MQTTMessage) async {
        guard let event = decodeResult(message, kind: "event") else { return }
        if event.status == .queued, let worker = event.worker {
            // A worker gives the job back (stopping, or a failed attempt): deliver it again now.
            do {
                if try await !database.handedBack(event.jobID, reason: event.error) {
                    // The request is not in the ledger yet (its message and the hand-back crossed):
                    // the hand-back applies as soon as it is.
                    earlyHandBacks.remember(event.jobID, reason: event.error)
                }
                logger.info("ledger: handed back by \(worker)\(event.error.map { ": \($0)" } ?? "")",
                            metadata: ["job_id": "\(event.jobID)"])
            } catch {
                logger.error("cannot record a hand-back", metadata: ["job_id": "\(event.jobID)", "error": "\(error)"])
            }
            return
        }
        guard event.status == .running else {
            logger.debug("ignoring event", metadata: ["job_id": "\(event.jobID)", "status": "\(event.status.rawValue)"])
            return
        }
        do {
            let startedAt = event.timings.startedAt ?? Clock.nowMillis()
            try await database.recordRunning(jobID: event.jobID, startedAt: startedAt,
                                             worker: event.worker, model: event.model.isEmpty ? nil : event.model,
                                             version: event.version, leaseUntil: leaseEnd(from: Clock.nowMillis()))
        } catch {
            logger.error("cannot record running event", metadata: ["job_id": "\(event.jobID)", "error": "\(error)"])
        }
    }

    /// Worker heartbeats: a live worker holds these jobs; keep their leases.
    func handleHeartbeat(_ message: MQTTMessage) async {
        guard let beat = try? JSONCoding.decoder.decode(WorkerHeartbeat.self, from: Data(message.payload)) else {
            logger.warning("skipping undecodable worker heartbeat", metadata: ["topic": "\(message.topic)"])
            return
        }
        let now = Clock.nowMillis()
        do {
            try await database.held(beat.queued, by: beat.worker, leaseUntil: leaseEnd(from: now))
            // Covers a lost running event; a known attempt is not counted twice.
            for job in beat.running {
                try await database.recordRunning(jobID: job.jobID, startedAt: job.startedAt, worker: beat.worker,
                                                 model: beat.model, leaseUntil: leaseEnd(from: now))
            }
        } catch {
            logger.error("cannot record a worker heartbeat", metadata: ["worker": "\(beat.worker)", "error": "\(error)"])
        }
    }

    private func decodeResult(_ message: MQTTMessage, kind: String) -> JobResult? {
        let result: JobResult
        do {
            result = try JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload))
        } catch {
            logger.warning("skipping undecodable \(kind)", metadata: ["topic": "\(message.topic)", "error": "\(error)"])
            return nil
        }
        if let topicID = Topics.jobID(fromTopic: message.topic), topicID != result.jobID {
            logger.warning("\(kind) for job \(result.jobID) published on the topic of job \(topicID)")
        }
        return result
    }
}
