import Foundation
import MQTT

extension JobRequest {
    /// Reads a request a device published on `conveyor/v1/devices/<device>/requests/<model>`.
    ///
    /// - The key of the job is the device's own job id: user property `job_id` (binary
    ///   form) or field `job_id` (JSON form), 1–64 characters of `[A-Za-z0-9_-]`. A binary
    ///   request without one uses the lowercase hex of its Correlation Data (1–24 bytes).
    /// - The job id is `<device>_<key>` (``DeviceNames/jobID(device:key:)``), at most 64
    ///   characters: the worker and the result store compute the same id from the message.
    /// - The reply topic (v5 Response Topic, or the JSON `reply_topic`) must lie inside
    ///   `conveyor/v1/devices/<device>/replies/`; without one it is
    ///   `conveyor/v1/devices/<device>/replies/<key>`.
    /// - The model is the topic's; a JSON `model` field must agree with it.
    ///
    /// Errors always carry a reply topic inside the device's namespace (the request's own
    /// if it was valid, the default one if the key is known, else `…/replies/invalid`).
    static func deviceRequest(_ message: MQTTMessage, device: String, model: String) throws(RequestDecodingError) -> JobRequest {
        let p = message.properties
        let prefix = Topics.deviceRepliesPrefix(device: device)
        func inNamespace(_ topic: String) -> Bool {
            topic.count > prefix.count && topic.hasPrefix(prefix) && !topic.contains("+") && !topic.contains("#")
        }
        var key: String?
        var explicitReply: String?
        func failure(_ reason: String) -> RequestDecodingError {
            let validKey = key.flatMap { JobID.isValid($0) && DeviceNames.jobID(device: device, key: $0).count <= 64 ? $0 : nil }
            let reply = explicitReply.flatMap { inNamespace($0) ? $0 : nil }
                ?? validKey.map { Topics.deviceReply(device: device, key: $0) }
                ?? Topics.deviceInvalidReply(device: device)
            return RequestDecodingError(reason: reason, jobID: validKey.map { DeviceNames.jobID(device: device, key: $0) },
                                        model: model, replyTopic: reply)
        }

        guard DeviceNames.isValid(device) else {
            throw failure("device name '\(device)' is not 1-32 characters of [A-Za-z0-9-]")
        }
        var request: JobRequest
        if isBinary(message) {
            explicitReply = p.responseTopic
            if let id = p.userProperty("job_id") {
                key = id
            } else if let data = p.correlationData, (1...24).contains(data.count) {
                key = DeviceNames.hex(data)
            } else {
                throw failure("a device's binary request needs a job_id user property or correlation data of 1-24 bytes")
            }
            guard let key, JobID.isValid(key) else { throw failure("job_id must be 1-64 characters of [A-Za-z0-9_-]") }
            if let named = p.userProperty("model"), named != model {
                throw failure("request for model '\(named)' published on the topic of '\(model)'")
            }
            var topK = 5
            if let text = p.userProperty("top_k") {
                guard let k = Int(text), (1...1000).contains(k) else { throw failure("top_k must be an integer from 1 to 1000") }
                topK = k
            }
            request = JobRequest(jobID: key, model: model, version: p.userProperty("version").flatMap { Int($0) }, topK: topK,
                                 submittedAt: p.userProperty("submitted_at").flatMap { Int64($0) } ?? Clock.nowMillis(),
                                 image: Data(message.payload), replyTopic: p.responseTopic)
        } else {
            do {
                request = try decodeJSON(Data(message.payload), topicModel: model)
            } catch {
                key = error.jobID
                // The reply topic, if the JSON got that far.
                let object = (try? JSONSerialization.jsonObject(with: Data(message.payload))) as? [String: Any]
                explicitReply = (object?["reply_topic"] as? String) ?? p.responseTopic
                throw failure(error.reason)
            }
            key = request.jobID
            if request.replyTopic == nil { request.replyTopic = p.responseTopic }
            explicitReply = request.replyTopic
        }
        let id = DeviceNames.jobID(device: device, key: request.jobID)
        guard id.count <= 64 else {
            throw failure("job id '\(id)' (device name, '_', job_id) is over 64 characters")
        }
        if let reply = request.replyTopic {
            guard inNamespace(reply) else {
                throw failure("reply topic '\(reply)' is outside this device's namespace \(prefix)")
            }
        } else {
            request.replyTopic = Topics.deviceReply(device: device, key: request.jobID)
        }
        request.jobID = id
        return request
    }
}
