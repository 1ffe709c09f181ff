import Foundation

/// A request to classify one image, as published on a model's request topic.
///
/// JSON form (`content type application/json`):
/// `{"job_id": "...", "model": "inception_v3", "version": null, "top_k": 5,
///   "submitted_at": 1732200000000, "image_b64": "<standard base64 JPEG>"}`.
/// Binary form: the payload is the JPEG itself and the other fields ride in
/// MQTT v5 user properties (`job_id`, `model`, `version`, `top_k`,
/// `submitted_at`), content type `image/jpeg`.
///
/// A request for a numeric model (TF Serving's `:predict` on MNIST) carries
/// float32 values instead of an image: `tensor_shape` gives their shape and
/// `image` holds the values, little-endian (binary form: content type
/// ``JobRequest/tensorContentType``, shape in user property `tensor_shape`,
/// e.g. `28,28,1`).
public struct JobRequest: Codable, Sendable, Equatable {
    public var jobID: String
    public var model: String
    public var version: Int?
    public var topK: Int
    /// Milliseconds since 1970 when the job was accepted.
    public var submittedAt: Int64
    /// The encoded image.
    public var image: Data
    /// Where to publish the result, if not the job's own result topic.
    public var replyTopic: String?
    /// Set for a tensor request: the shape of the float32 values in `image`.
    public var tensorShape: [Int]?

    /// Content type of a binary tensor request.
    public static let tensorContentType = "application/x-tensor-float32"

    public init(jobID: String, model: String, version: Int? = nil, topK: Int = 5,
                submittedAt: Int64 = Clock.nowMillis(), image: Data, replyTopic: String? = nil,
                tensorShape: [Int]? = nil) {
        self.jobID = jobID
        self.model = model
        self.version = version
        self.topK = topK
        self.submittedAt = submittedAt
        self.image = image
        self.replyTopic = replyTopic
        self.tensorShape = tensorShape
    }

    /// A tensor request for float32 `values` of `shape`.
    public init(jobID: String, model: String, version: Int? = nil, topK: Int,
                submittedAt: Int64 = Clock.nowMillis(), tensor values: [Float], shape: [Int]) {
        var bytes = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        self.init(jobID: jobID, model: model, version: version, topK: topK, submittedAt: submittedAt,
                  image: bytes, tensorShape: shape)
    }

    /// The float32 values of a tensor request whose byte count matches its
    /// shape; nil otherwise.
    public var tensorValues: [Float]? {
        guard let shape = tensorShape, shape.allSatisfy({ $0 > 0 }),
              shape.reduce(1, *) * 4 == image.count else { return nil }
        return image.withUnsafeBytes { raw in
            (0..<(image.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", model, version, topK = "top_k", submittedAt = "submitted_at"
        case image = "image_b64", replyTopic = "reply_topic", tensorShape = "tensor_shape"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        jobID = try c.decode(String.self, forKey: .jobID)
        model = try c.decode(String.self, forKey: .model)
        version = try c.decodeIfPresent(Int.self, forKey: .version)
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? 5
        submittedAt = try c.decodeIfPresent(Int64.self, forKey: .submittedAt) ?? Clock.nowMillis()
        let text = try c.decode(String.self, forKey: .image)
        guard let data = Base64.decode(text) else {
            throw DecodingError.dataCorruptedError(forKey: .image, in: c, debugDescription: "image_b64 is not valid base64")
        }
        image = data
        replyTopic = try c.decodeIfPresent(String.self, forKey: .replyTopic)
        tensorShape = try c.decodeIfPresent([Int].self, forKey: .tensorShape)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobID, forKey: .jobID)
        try c.encode(model, forKey: .model)
        try c.encodeIfPresent(version, forKey: .version)
        try c.encode(topK, forKey: .topK)
        try c.encode(submittedAt, forKey: .submittedAt)
        try c.encode(image.base64EncodedString(), forKey: .image)
        try c.encodeIfPresent(replyTopic, forKey: .replyTopic)
        try c.encodeIfPresent(tensorShape, forKey: .tensorShape)
    }

    /// The JSON payload.
    public func jsonPayload() -> Data { (try? JSONCoding.encoder.encode(self)) ?? Data() }

    /// The ledger's view of a request: everything but the image.
    public var summary: String { "\(jobID) model=\(model) v=\(version.map(String.init) ?? "latest") top_k=\(topK) \(image.count) bytes" }
}
