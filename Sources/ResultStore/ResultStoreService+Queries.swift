import Foundation
import Jobs
import StoreClient
import Logging
import MQTT
import Observability
import ServiceLifecycle
import Tracing

// Store queries: get, list and delete (MQTT v5 request/response).
extension ResultStoreService {
    /// Store queries: answers on the response topic with the same correlation data.
    func handleQuery(_ message: MQTTMessage, client: MQTTClient) async {
        guard let responseTopic = message.properties.responseTopic, !responseTopic.isEmpty else {
            logger.notice("store query without a response topic")
            return
        }
        let payload = await answer(message.payload)
        var properties = MQTTProperties()
        properties.correlationData = message.properties.correlationData
        properties.contentType = "application/json"
        do {
            try await client.publish(responseTopic, payload: payload, qos: 1, retain: false, properties: properties)
        } catch is CancellationError {
            // Stopping while waiting for the PUBACK; the reply has usually gone out already.
            logger.debug("store query reply interrupted by shutdown", metadata: ["response_topic": "\(responseTopic)"])
        } catch {
            logger.warning("cannot answer store query", metadata: ["response_topic": "\(responseTopic)", "error": "\(error)"])
        }
    }

    /// The reply payload for a query payload (see ``StoreQuery``).
    func answer(_ payload: [UInt8]) async -> [UInt8] {
        guard let query = try? JSONCoding.decoder.decode(StoreQuery.self, from: Data(payload)) else {
            return StoreErrorReply(error: "invalid query: expected {\"job_id\": \"...\"} or {\"op\": \"list\"}", jobID: nil).jsonPayload()
        }
        do {
            switch query.operation {
            case .get:
                guard let id = query.jobID else { return StoreErrorReply(error: "invalid query: job_id is missing", jobID: nil).jsonPayload() }
                guard let job = try await database.job(id) else {
                    return StoreErrorReply(error: StoreErrorReply.notFound, jobID: id).jsonPayload()
                }
                return [UInt8](job.jsonPayload())
            case .list:
                let limit = query.limit ?? 20
                guard (1...StoreQuery.maxListLimit).contains(limit) else {
                    return StoreErrorReply(error: "invalid query: limit must be 1 to \(StoreQuery.maxListLimit)", jobID: nil).jsonPayload()
                }
                var cursor: JobPage.Cursor?
                if let before = query.before {
                    guard let parsed = JobPage.Cursor(before) else {
                        return StoreErrorReply(error: "invalid query: before is not a cursor", jobID: nil).jsonPayload()
                    }
                    cursor = parsed
                }
                return try await database.list(status: query.status, model: query.model, limit: limit, before: cursor).jsonPayload()
            case .delete:
                guard let id = query.jobID else { return StoreErrorReply(error: "invalid query: job_id is missing", jobID: nil).jsonPayload() }
                switch try await database.delete(id) {
                case .notFound:
                    return StoreErrorReply(error: StoreErrorReply.notFound, jobID: id).jsonPayload()
                case .deleted:
                    logger.info("job deleted", metadata: ["job_id": "\(id)"])
                    return JobDeletion(jobID: id, status: .deleted).jsonPayload()
                case let .cancelled(record, replyTopic, new):
                    if new {
                        StoreMetrics.jobFinished(record, now: Clock.nowMillis())
                        logger.info("job cancelled", metadata: ["job_id": "\(id)"])
                    }
                    // Told again on a repeated delete: an announcement lost with a broker restart gets another chance.
                    await announceCancellation(record.result, replyTopic: replyTopic)
                    return JobDeletion(jobID: id, status: .cancelled).jsonPayload()
                }
            }
        } catch {
            logger.error("store query failed", metadata: ["job_id": "\(query.jobID ?? "-")", "error": "\(error)"])
            return StoreErrorReply(error: "database error", jobID: query.jobID).jsonPayload()
        }
    }

    /// Tells the workers (``Jobs/Topics/cancellations``), the job's result
    /// topic and the request's reply topic that a job is cancelled, after the
    /// cancellation is committed.
    private func announceCancellation(_ result: JobResult, replyTopic: String?) async {
        do {
            try await client.publish(Topics.cancellations, payload: JobCancellation(jobID: result.jobID).jsonPayload(), qos: 1)
            try await client.publish(Topics.result(job: result.jobID), payload: [UInt8](result.jsonPayload()), qos: 1)
            if let replyTopic, replyTopic != Topics.result(job: result.jobID) {
                var properties = MQTTProperties()
                properties.contentType = "application/json"
                try await client.publish(replyTopic, payload: [UInt8](result.jsonPayload()), qos: 1, properties: properties)
            }
        } catch {
            logger.warning("cannot announce a cancellation", metadata: ["job_id": "\(result.jobID)", "error": "\(error)"])
        }
    }
}
