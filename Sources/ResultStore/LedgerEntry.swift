import Foundation
import Jobs
import MQTT

/// A request as the ledger keeps it: the message exactly as it came (topic,
/// payload bytes and the MQTT v5 properties a worker or a reply depends on),
/// plus the few fields the ledger itself reads (job id, model, version, reply
/// topic, when it was accepted).
///
/// Publishing it again republishes the original message: same topic, same
/// bytes, same content type, response topic, correlation data and user
/// properties, with what is left of its message expiry. Only the
/// ``Jobs/LedgerReceipt/userProperty`` is dropped (the receipt was sent once).
public struct LedgerEntry: Sendable, Equatable {
    public var jobID: String
    public var model: String
    public var version: Int?
    /// Where a result goes besides the job's result topic (a response topic, a device's reply topic).
    public var replyTopic: String?
    /// Milliseconds since 1970 when the job was accepted.
    public var submittedAt: Int64
    /// Milliseconds since 1970 when the store received the message (the start of its message expiry).
    public var receivedAt: Int64
    /// The message as it came.
    public var topic: String
    public var payload: [UInt8]
    public var properties: MQTTProperties

    public init(jobID: String, model: String, version: Int?, replyTopic: String?, submittedAt: Int64,
                receivedAt: Int64, topic: String, payload: [UInt8], properties: MQTTProperties) {
        self.jobID = jobID
        self.model = model
        self.version = version
        self.replyTopic = replyTopic
        self.submittedAt = submittedAt
        self.receivedAt = receivedAt
        self.topic = topic
        self.payload = payload
        self.properties = properties
    }

    /// The entry for `message`, already read as `request`.
    public init(_ request: JobRequest, message: MQTTMessage, receivedAt: Int64 = Clock.nowMillis()) {
        var properties = message.properties
        properties.userProperties.removeAll { $0.name == LedgerReceipt.userProperty }
        self.init(jobID: request.jobID, model: request.model, version: request.version, replyTopic: request.replyTopic,
                  submittedAt: request.submittedAt, receivedAt: receivedAt,
                  topic: message.topic, payload: message.payload, properties: properties)
    }

    /// The entry of `request` published in the binary form on its service
    /// request topic (what the ingress sends).
    public init(binary request: JobRequest, receivedAt: Int64 = Clock.nowMillis()) {
        let (payload, properties) = request.binaryMessage()
        let topic = Topics.requests(model: request.model, version: request.version.map(Int64.init))
        self.init(request, message: MQTTMessage(topic: topic, payload: payload, qos: 1, properties: properties),
                  receivedAt: receivedAt)
    }

    /// The properties to publish it with again at `now`, or `nil` if its
    /// message expiry has passed (it must not be delivered any more).
    public func republishedProperties(now: Int64) -> MQTTProperties? {
        var properties = self.properties
        if let interval = properties.messageExpiryInterval {
            let left = Int64(interval) - (now - receivedAt) / 1000
            guard left > 0 else { return nil }
            properties.messageExpiryInterval = UInt32(left)
        }
        return properties
    }
}

extension LedgerEntry {
    /// The stored form of ``properties`` (the `pending.properties` column):
    /// JSON, correlation data in base64.
    struct StoredProperties: Codable, Equatable {
        var contentType: String?
        var responseTopic: String?
        var correlationData: String?
        var messageExpiryInterval: UInt32?
        var payloadFormatIsUTF8: Bool?
        var userProperties: [[String]]?

        enum CodingKeys: String, CodingKey {
            case contentType = "content_type", responseTopic = "response_topic"
            case correlationData = "correlation_data", messageExpiryInterval = "message_expiry_interval"
            case payloadFormatIsUTF8 = "payload_format_utf8", userProperties = "user_properties"
        }

        init(_ p: MQTTProperties) {
            contentType = p.contentType
            responseTopic = p.responseTopic
            correlationData = p.correlationData.map { Data($0).base64EncodedString() }
            messageExpiryInterval = p.messageExpiryInterval
            payloadFormatIsUTF8 = p.payloadFormatIsUTF8
            userProperties = p.userProperties.isEmpty ? nil : p.userProperties.map { [$0.name, $0.value] }
        }

        var properties: MQTTProperties {
            MQTTProperties(responseTopic: responseTopic,
                           correlationData: correlationData.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) },
                           contentType: contentType,
                           userProperties: (userProperties ?? []).compactMap {
                               $0.count == 2 ? MQTTUserProperty(name: $0[0], value: $0[1]) : nil
                           },
                           messageExpiryInterval: messageExpiryInterval,
                           payloadFormatIsUTF8: payloadFormatIsUTF8)
        }

        static func encode(_ p: MQTTProperties) -> String {
            String(decoding: (try? JSONEncoder().encode(StoredProperties(p))) ?? Data("{}".utf8), as: UTF8.self)
        }

        static func decode(_ text: String?) -> MQTTProperties {
            guard let text, let stored = try? JSONDecoder().decode(StoredProperties.self, from: Data(text.utf8)) else {
                return MQTTProperties()
            }
            return stored.properties
        }
    }
}
