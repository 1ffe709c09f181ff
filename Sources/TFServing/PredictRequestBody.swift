/// The body of `POST /v1/models/…:predict`, decoded against the signature it
/// names: row form (`"instances"`, one entry per example) or columnar form
/// (`"inputs"`, one value per named input, batch dimension first).
public struct PredictRequestBody: Sendable, Equatable {
    public enum Format: Sendable, Equatable {
        /// `"instances"`; answered with `"predictions"`.
        case row
        /// `"inputs"`; answered with `"outputs"`.
        case columnar
    }

    /// The requested signature (`serving_default` when absent).
    public var signatureName: String
    public var format: Format
    /// Each input of the signature, batch dimension first.
    public var inputs: [String: Tensor]

    /// Parses `body`; `signature` looks up a signature by name and throws the
    /// not-found error when there is none.
    public static func parse(_ body: some Collection<UInt8>,
                             signature lookup: (String) throws(TFServingError) -> Signature) throws(TFServingError) -> PredictRequestBody {
        let (json, signatureName) = try PredictRequestBody.object(body)
        let signature = try lookup(signatureName)
        switch (json["instances"], json["inputs"]) {
        case (nil, nil): throw .invalid("Missing 'inputs' or 'instances' key")
        case (.some, .some): throw .invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' keys exists")
        case (let instances?, nil):
            return PredictRequestBody(signatureName: signatureName, format: .row,
                                      inputs: try rows(instances, signature: signature))
        case (nil, let inputs?):
            return PredictRequestBody(signatureName: signatureName, format: .columnar,
                                      inputs: try columns(inputs, signature: signature))
        }
    }

    /// A request body's JSON object and the signature it names
    /// (`serving_default` when it names none).
    static func object(_ body: some Collection<UInt8>) throws(TFServingError) -> (JSONValue, String) {
        let json = try JSONValue.parse(body)
        guard case .object = json else { throw .invalid("The request body must be a JSON object") }
        guard let name = json["signature_name"] else { return (json, Signature.defaultKey) }
        guard case .string(let text) = name else { throw .invalid("'signature_name' must be a string") }
        return (json, text)
    }

    /// An object other than `{"b64": …}` names the inputs.
    private static func namedInputs(_ value: JSONValue) -> [(String, JSONValue)]? {
        guard case .object(let members) = value else { return nil }
        if members.count == 1, members[0].0 == "b64" { return nil }
        return members
    }

    private static func checkNames(_ names: [String], signature: Signature) throws(TFServingError) {
        for name in names where signature.input(named: name) == nil {
            throw .invalid("Input tensor alias not found in signature: \(name). Inputs expected to be in the set {\(signature.inputs.map(\.name).sorted().joined(separator: ","))}.")
        }
        for spec in signature.inputs where !names.contains(spec.name) {
            throw .invalid("Missing input '\(spec.name)' (the signature's inputs are {\(signature.inputs.map(\.name).sorted().joined(separator: ","))})")
        }
    }

    private static func columns(_ inputs: JSONValue, signature: Signature) throws(TFServingError) -> [String: Tensor] {
        var named: [(String, JSONValue)]
        if let members = namedInputs(inputs) {
            named = members
        } else {
            guard signature.inputs.count == 1 else {
                throw .invalid("'inputs' must name each of the signature's \(signature.inputs.count) inputs")
            }
            named = [(signature.inputs[0].name, inputs)]
        }
        try checkNames(named.map(\.0), signature: signature)
        var tensors: [String: Tensor] = [:]
        for (name, value) in named {
            tensors[name] = try TensorJSON.decode(value, as: signature.input(named: name)!.dtype, input: name)
        }
        return tensors
    }

    private static func rows(_ instances: JSONValue, signature: Signature) throws(TFServingError) -> [String: Tensor] {
        guard case .array(let list) = instances, !list.isEmpty else {
            throw .invalid("'instances' must be a non-empty list")
        }
        var perInput: [String: [Tensor]] = [:]
        for (i, instance) in list.enumerated() {
            var named: [(String, JSONValue)]
            if let members = namedInputs(instance) {
                named = members
            } else {
                guard signature.inputs.count == 1 else {
                    throw .invalid("instance \(i) must be an object naming the signature's \(signature.inputs.count) inputs")
                }
                named = [(signature.inputs[0].name, instance)]
            }
            try checkNames(named.map(\.0), signature: signature)
            for (name, value) in named {
                let tensor = try TensorJSON.decode(value, as: signature.input(named: name)!.dtype, input: name)
                if let first = perInput[name]?.first, first.shape != tensor.shape {
                    throw .invalid("Expecting tensors of the same shape in all instances for input '\(name)': instance 0 has \(first.shape), instance \(i) has \(tensor.shape)")
                }
                perInput[name, default: []].append(tensor)
            }
        }
        var tensors: [String: Tensor] = [:]
        for (name, parts) in perInput { tensors[name] = stack(parts) }
        return tensors
    }

    /// Stacks equally shaped tensors along a new first dimension.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        let shape = [parts.count] + parts[0].shape
        switch parts[0].values {
        case .numbers:
            return Tensor(dtype: parts[0].dtype, shape: shape, values: .numbers(parts.flatMap {
                if case .numbers(let n) = $0.values { return n } else { return [] }
            }))
        case .strings:
            return Tensor(dtype: parts[0].dtype, shape: shape, values: .strings(parts.flatMap {
                if case .strings(let s) = $0.values { return s } else { return [] }
            }))
        case .bools:
            return Tensor(dtype: parts[0].dtype, shape: shape, values: .bools(parts.flatMap {
                if case .bools(let b) = $0.values { return b } else { return [] }
            }))
        }
    }
}
