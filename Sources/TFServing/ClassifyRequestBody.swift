/// The body of `POST /v1/models/…:classify`:
/// `{"signature_name": …, "context": {features}, "examples": [{features}, …]}`.
/// Each example's features are merged over the context's; the classification
/// signature names the feature it reads (its single input).
public struct ClassifyRequestBody: Sendable, Equatable {
    public var signatureName: String
    /// The input feature of each example, batch dimension first.
    public var input: Tensor

    public static func parse(_ body: some Collection<UInt8>,
                             signature lookup: (String) throws(TFServingError) -> Signature) throws(TFServingError) -> ClassifyRequestBody {
        let (json, signatureName) = try PredictRequestBody.object(body)
        let signature = try lookup(signatureName)
        guard signature.inputs.count == 1 else {
            throw .invalid("Signature '\(signatureName)' has \(signature.inputs.count) inputs; :classify needs one")
        }
        let spec = signature.inputs[0]
        guard case .array(let examples)? = json["examples"], !examples.isEmpty else {
            throw .invalid("'examples' must be a non-empty list of objects")
        }
        var context: [(String, JSONValue)] = []
        if let value = json["context"] {
            guard case .object(let members) = value else { throw .invalid("'context' must be an object") }
            context = members
        }
        var parts: [Tensor] = []
        for (i, example) in examples.enumerated() {
            guard case .object(let features) = example else { throw .invalid("example \(i) is not an object") }
            guard let value = features.first(where: { $0.0 == spec.name })?.1
                    ?? context.first(where: { $0.0 == spec.name })?.1 else {
                throw .invalid("example \(i) has no feature '\(spec.name)' (signature '\(signatureName)' reads it)")
            }
            let tensor = try TensorJSON.decode(value, as: spec.dtype, input: spec.name)
            if let first = parts.first, first.shape != tensor.shape {
                throw .invalid("feature '\(spec.name)' has shape \(tensor.shape) in example \(i) but \(first.shape) in example 0")
            }
            parts.append(tensor)
        }
        return ClassifyRequestBody(signatureName: signatureName, input: PredictRequestBody.stack(parts))
    }

    /// `{"result": [[["label", score], …] per example]}`.
    public static func encode(_ results: [[(label: String, score: Float)]]) -> JSONValue {
        .object([("result", .array(results.map { classes in
            .array(classes.map { .array([.string($0.label), .float($0.score)]) })
        }))])
    }
}
