import Foundation

/// The body of `POST /predict`: `{"image_data": "<base64 JPEG>", "top_k": 5}` (`top_k`
/// optional, 1–1000). Parsed here, outside the HTTP server, so the fuzz target
/// `FuzzRequestJSON` can exercise exactly what the ingress runs.
public struct PredictRequest: Sendable, Equatable {
    /// The decoded image bytes (not yet checked to be a JPEG).
    public var image: Data
    public var topK: Int

    /// Parses a request body; the error's `message` is what the client is told (HTTP 400).
    public init(json body: Data) throws(PredictRequestError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw PredictRequestError("body is not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw PredictRequestError("body must be a JSON object") }
        guard let value = fields["image_data"], !(value is NSNull) else {
            throw PredictRequestError("missing \"image_data\": a base64-encoded JPEG")
        }
        guard let text = value as? String else {
            throw PredictRequestError("\"image_data\" must be a string: a base64-encoded JPEG")
        }
        guard text.contains(where: { !$0.isWhitespace }) else { throw PredictRequestError("\"image_data\" is empty") }
        guard let image = Base64.decode(text) else { throw PredictRequestError("\"image_data\" is not valid base64") }
        var topK = 5
        if let k = fields["top_k"] {
            guard let n = Self.integer(k), (1...1000).contains(n) else {
                throw PredictRequestError("top_k must be an integer from 1 to 1000")
            }
            topK = n
        }
        self.image = image
        self.topK = topK
    }

    /// A JSON number that is a whole number, not a boolean: JSONSerialization gives both as
    /// NSNumber and `true as? Int` is 1, so booleans are told apart by their `char` type.
    private static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return value as? Int
    }
}

/// Why a `POST /predict` body was refused.
public struct PredictRequestError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
