import Foundation
import MQTT

/// Why a message on a request topic is not a usable request. Carries whatever
/// could be recovered, so the job can still be answered `failed`.
public struct RequestDecodingError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var jobID: String?
    public var model: String?
    public var description: String { reason }
}

extension JobRequest {
    /// Reads a request message: the binary form (content type `image/jpeg`, or
    /// a payload starting with the JPEG marker) with its fields in v5 user
    /// properties, or the JSON form.
    public init(message: MQTTMessage) throws(RequestDecodingError) {
        let target = Topics.requestTarget(fromTopic: message.topic)
        let topicModel = target?.model
        let topicVersion = target?.version.map { Int($0) }
        let p = message.properties
        let isTensor = p.contentType == JobRequest.tensorContentType
        let isBinary = isTensor || p.contentType == "image/jpeg" || p.contentType?.hasPrefix("image/") == true
            || (message.payload.count >= 2 && message.payload[0] == 0xFF && message.payload[1] == 0xD8)
        if isBinary {
            let id = p.userProperty("job_id") ?? JobID.make()
            guard JobID.isValid(id) else {
                throw RequestDecodingError(reason: "job_id must be 1-64 characters of [A-Za-z0-9_-]", jobID: nil, model: topicModel)
            }
            guard let model = p.userProperty("model") ?? topicModel else {
                throw RequestDecodingError(reason: "no model named", jobID: id, model: nil)
            }
            var topK = 5
            if let text = p.userProperty("top_k") {
                guard let k = Int(text), (1...1000).contains(k) else {
                    throw RequestDecodingError(reason: "top_k must be an integer from 1 to 1000", jobID: id, model: model)
                }
                topK = k
            }
            var shape: [Int]?
            if isTensor {
                guard let text = p.userProperty("tensor_shape"),
                      case let dims = text.split(separator: ",").compactMap({ Int($0) }),
                      !dims.isEmpty, dims.allSatisfy({ $0 > 0 }) else {
                    throw RequestDecodingError(reason: "a tensor request needs user property tensor_shape (e.g. 28,28,1)", jobID: id, model: model)
                }
                shape = dims
            }
            self.init(jobID: id, model: model, version: p.userProperty("version").flatMap { Int($0) } ?? topicVersion, topK: topK,
                      submittedAt: p.userProperty("submitted_at").flatMap { Int64($0) } ?? Clock.nowMillis(),
                      image: Data(message.payload), replyTopic: p.responseTopic, tensorShape: shape)
            if isTensor, tensorValues == nil {
                throw RequestDecodingError(reason: "tensor payload of \(message.payload.count) bytes does not hold float32 values of shape \(shape!)", jobID: id, model: model)
            }
            return
        }
        let data = Data(message.payload)
        do {
            var request = try JSONCoding.decoder.decode(JobRequest.self, from: data)
            guard JobID.isValid(request.jobID) else {
                throw RequestDecodingError(reason: "job_id must be 1-64 characters of [A-Za-z0-9_-]", jobID: nil, model: request.model)
            }
            guard (1...1000).contains(request.topK) else {
                throw RequestDecodingError(reason: "top_k must be from 1 to 1000", jobID: request.jobID, model: request.model)
            }
            if let topicModel, request.model != topicModel {
                throw RequestDecodingError(reason: "request for model '\(request.model)' published on the topic of '\(topicModel)'",
                                           jobID: request.jobID, model: request.model)
            }
            if request.replyTopic == nil { request.replyTopic = p.responseTopic }
            if request.version == nil { request.version = topicVersion }
            if request.tensorShape != nil, request.tensorValues == nil {
                throw RequestDecodingError(reason: "image_b64 does not hold float32 values of tensor_shape \(request.tensorShape!)",
                                           jobID: request.jobID, model: request.model)
            }
            self = request
        } catch let error as RequestDecodingError {
            throw error
        } catch {
            // Recover the id, if the JSON got that far, so the job can be failed.
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            let id = (object?["job_id"] as? String).flatMap { JobID.isValid($0) ? $0 : nil }
            let reason: String
            if object == nil {
                reason = "payload is neither a JPEG nor a JSON request"
            } else if case DecodingError.dataCorrupted(let context) = error {
                reason = context.debugDescription
            } else if case DecodingError.keyNotFound(let key, _) = error {
                reason = "missing field '\(key.stringValue)'"
            } else {
                reason = "invalid request: \(error)"
            }
            throw RequestDecodingError(reason: reason, jobID: id, model: (object?["model"] as? String) ?? topicModel)
        }
    }

    /// The binary form: the image as payload, the fields as v5 user properties.
    public func binaryMessage() -> (payload: [UInt8], properties: MQTTProperties) {
        var props = MQTTProperties()
        props.contentType = tensorShape == nil ? "image/jpeg" : JobRequest.tensorContentType
        props.responseTopic = replyTopic
        props.userProperties = [
            MQTTUserProperty(name: "job_id", value: jobID),
            MQTTUserProperty(name: "model", value: model),
            MQTTUserProperty(name: "top_k", value: String(topK)),
            MQTTUserProperty(name: "submitted_at", value: String(submittedAt)),
        ] + (version.map { [MQTTUserProperty(name: "version", value: String($0))] } ?? [])
            + (tensorShape.map { [MQTTUserProperty(name: "tensor_shape", value: $0.map(String.init).joined(separator: ","))] } ?? [])
        return ([UInt8](image), props)
    }

    /// The JSON form, as payload and properties.
    public func jsonMessage() -> (payload: [UInt8], properties: MQTTProperties) {
        var props = MQTTProperties()
        props.contentType = "application/json"
        return ([UInt8](jsonPayload()), props)
    }
}
