import Foundation
import MQTT

/// Why a message on a request topic is not a usable request. Carries whatever
/// could be recovered, so the job can still be answered `failed`.
public struct RequestDecodingError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var jobID: String?
    public var model: String?
    /// Where the `failed` answer goes besides the job's result topic: the request's
    /// Response Topic for the service topics, the device's own reply topic (never one
    /// outside its namespace) for a device's request.
    public var replyTopic: String?
    public var description: String { reason }

    public init(reason: String, jobID: String?, model: String?, replyTopic: String? = nil) {
        self.reason = reason
        self.jobID = jobID
        self.model = model
        self.replyTopic = replyTopic
    }
}

extension JobRequest {
    /// Reads a request message: the binary form (content type `image/jpeg`, or
    /// a payload starting with the JPEG marker) with its fields in v5 user
    /// properties, or the JSON form. A message on a device's request topic is read
    /// by the device rules (see `deviceRequest(_:device:model:)`). With `maxBytes`, a
    /// payload over it is refused, with whatever could be read from it (job id,
    /// reply topic) in the error so it can still be answered.
    public init(message: MQTTMessage, maxBytes: Int? = nil) throws(RequestDecodingError) {
        if let maxBytes, message.payload.count > maxBytes {
            let reason = "request of \(message.payload.count) bytes is over the limit of \(maxBytes) bytes"
            var error: RequestDecodingError
            do {
                let request = try JobRequest(message: message)
                error = RequestDecodingError(reason: reason, jobID: request.jobID, model: request.model, replyTopic: request.replyTopic)
            } catch let recovered {
                error = recovered
                error.reason = reason
            }
            throw error
        }
        if let (device, model) = Topics.deviceRequest(fromTopic: message.topic) {
            self = try Self.deviceRequest(message, device: device, model: model)
            return
        }
        do {
            try self.init(serviceMessage: message)
        } catch {
            var error = error
            if error.replyTopic == nil { error.replyTopic = message.properties.responseTopic }
            throw error
        }
    }

    /// Whether a request message is the binary form (an image or tensor
    /// content type, or a payload starting with the JPEG marker).
    public static func isBinary(_ message: MQTTMessage) -> Bool {
        let p = message.properties
        return p.contentType?.hasPrefix("image/") == true
            || p.contentType == JobRequest.tensorContentType
            || (message.payload.count >= 2 && message.payload[0] == 0xFF && message.payload[1] == 0xD8)
    }

    /// A message on a service request topic (`conveyor/v1/requests/<model>`, or
    /// `…/<model>/<version>` for one version).
    private init(serviceMessage message: MQTTMessage) throws(RequestDecodingError) {
        let target = Topics.requestTarget(fromTopic: message.topic)
        let topicModel = target?.model
        let topicVersion = target?.version.map { Int($0) }
        let p = message.properties
        if Self.isBinary(message) {
            let id = p.userProperty("job_id") ?? JobID.make()
            guard JobID.isValid(id) else {
                throw RequestDecodingError(reason: "job_id must be 1-64 characters of [A-Za-z0-9_-]", jobID: nil, model: topicModel)
            }
            guard let model = p.userProperty("model") ?? topicModel else {
                throw RequestDecodingError(reason: "no model named", jobID: id, model: nil)
            }
            guard Topics.isValidModelName(model) else {
                throw RequestDecodingError(reason: Topics.modelNameRule, jobID: id, model: nil)
            }
            if let topicModel, model != topicModel {
                throw RequestDecodingError(reason: "request for model '\(model)' published on the topic of '\(topicModel)'",
                                           jobID: id, model: model)
            }
            var topK = 5
            if let text = p.userProperty("top_k") {
                guard let k = Int(text), (1...1000).contains(k) else {
                    throw RequestDecodingError(reason: "top_k must be an integer from 1 to 1000", jobID: id, model: model)
                }
                topK = k
            }
            var version: Int? = topicVersion
            if let text = p.userProperty("version") {
                guard let v = Int(text), v >= 0 else {
                    throw RequestDecodingError(reason: "version must be a non-negative integer", jobID: id, model: model)
                }
                version = v
            }
            var submittedAt = Clock.nowMillis()
            if let text = p.userProperty("submitted_at") {
                guard let ms = Int64(text), ms >= 0 else {
                    throw RequestDecodingError(reason: "submitted_at must be milliseconds since 1970", jobID: id, model: model)
                }
                submittedAt = ms
            }
            if let reply = p.responseTopic, let problem = Topics.problem(withReplyTopic: reply) {
                throw RequestDecodingError(reason: problem, jobID: id, model: model)
            }
            var shape: [Int]?
            if p.contentType == JobRequest.tensorContentType {
                guard let text = p.userProperty("tensor_shape"),
                      case let dims = text.split(separator: ",").compactMap({ Int($0) }),
                      !dims.isEmpty, dims.allSatisfy({ $0 > 0 }) else {
                    throw RequestDecodingError(reason: "a tensor request needs user property tensor_shape (e.g. 28,28,1)", jobID: id, model: model)
                }
                shape = dims
            }
            self.init(jobID: id, model: model, version: version, topK: topK, submittedAt: submittedAt,
                      image: Data(message.payload), replyTopic: p.responseTopic, tensorShape: shape)
            if let shape, tensorValues == nil {
                throw RequestDecodingError(reason: "tensor payload of \(message.payload.count) bytes does not hold float32 values of shape \(shape)", jobID: id, model: model)
            }
            return
        }
        var request = try Self.decodeJSON(Data(message.payload), topicModel: topicModel)
        if request.replyTopic == nil { request.replyTopic = p.responseTopic }
        if request.version == nil { request.version = topicVersion }
        if let reply = request.replyTopic, let problem = Topics.problem(withReplyTopic: reply) {
            throw RequestDecodingError(reason: problem, jobID: request.jobID, model: request.model)
        }
        self = request
    }

    /// The JSON form; `topicModel` (if known) must match its `model`.
    static func decodeJSON(_ data: Data, topicModel: String?) throws(RequestDecodingError) -> JobRequest {
        do {
            let request = try JSONCoding.decoder.decode(JobRequest.self, from: data)
            guard JobID.isValid(request.jobID) else {
                throw RequestDecodingError(reason: "job_id must be 1-64 characters of [A-Za-z0-9_-]", jobID: nil, model: request.model)
            }
            guard (1...1000).contains(request.topK) else {
                throw RequestDecodingError(reason: "top_k must be from 1 to 1000", jobID: request.jobID, model: request.model)
            }
            guard Topics.isValidModelName(request.model) else {
                throw RequestDecodingError(reason: Topics.modelNameRule, jobID: request.jobID, model: nil)
            }
            if let topicModel, request.model != topicModel {
                throw RequestDecodingError(reason: "request for model '\(request.model)' published on the topic of '\(topicModel)'",
                                           jobID: request.jobID, model: request.model)
            }
            if let version = request.version, version < 0 {
                throw RequestDecodingError(reason: "version must be a non-negative integer", jobID: request.jobID, model: request.model)
            }
            if let shape = request.tensorShape, request.tensorValues == nil {
                throw RequestDecodingError(reason: "image_b64 does not hold float32 values of tensor_shape \(shape)",
                                           jobID: request.jobID, model: request.model)
            }
            return request
        } catch let error as RequestDecodingError {
            throw error
        } catch {
            // Recover the id, if the JSON got that far, so the job can be failed.
            let parsed = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            let object = parsed as? [String: Any]
            let id = (object?["job_id"] as? String).flatMap { JobID.isValid($0) ? $0 : nil }
            let reason: String
            if parsed == nil {
                reason = "payload is neither a JPEG nor valid JSON"
            } else if object == nil {
                reason = "payload is JSON but not a request object"
            } else if let problem = Self.wrongType(in: object!) {
                reason = problem
            } else if case DecodingError.dataCorrupted(let context) = error {
                reason = context.codingPath.isEmpty ? context.debugDescription
                    : "field '\(Self.fieldName(context.codingPath))' has an invalid value (\(context.debugDescription))"
            } else if case DecodingError.keyNotFound(let key, _) = error {
                reason = "missing field '\(key.stringValue)'"
            } else if case DecodingError.typeMismatch(let type, let context) = error {
                reason = "field '\(Self.fieldName(context.codingPath))' must be \(Self.describe(type))"
            } else if case DecodingError.valueNotFound(let type, let context) = error {
                reason = "field '\(Self.fieldName(context.codingPath))' must be \(Self.describe(type)), not null"
            } else {
                reason = "invalid request: \(error)"
            }
            throw RequestDecodingError(reason: reason, jobID: id, model: (object?["model"] as? String) ?? topicModel)
        }
    }

    /// The first field of a JSON request object whose value has the wrong type (JSONDecoder
    /// reports some of these, e.g. `1e30` for an integer, without naming the field).
    private static func wrongType(in object: [String: Any]) -> String? {
        for key in ["job_id", "model", "image_b64", "reply_topic"] {
            if let value = object[key], !(value is NSNull), !(value is String) { return "field '\(key)' must be a string" }
        }
        for key in ["top_k", "version", "submitted_at"] {
            guard let value = object[key], !(value is NSNull) else { continue }
            let isInteger = (value as? NSNumber).map { String(cString: $0.objCType) != "c" && (value as? Int64) != nil } ?? false
            if !isInteger { return "field '\(key)' must be an integer" }
        }
        return nil
    }

    private static func fieldName(_ path: [any CodingKey]) -> String {
        path.map(\.stringValue).joined(separator: ".")
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        default: "a \(type)"
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
