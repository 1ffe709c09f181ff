/// The JSON answer to `:predict`, in the form the request used: row form
/// `{"predictions": [one entry per example]}`, columnar form
/// `{"outputs": …}`. With a single output, entries (or `outputs`) are its
/// values directly; with several, objects keyed by output name.
public enum PredictResponseBody {
    /// - Parameter outputs: the signature's outputs in signature order, batch
    ///   dimension first.
    public static func encode(_ outputs: [(name: String, tensor: Tensor)],
                              format: PredictRequestBody.Format) -> JSONValue {
        func value(_ tensor: Tensor, _ name: String) -> JSONValue {
            TensorJSON.encode(tensor, binary: name.hasSuffix("_bytes"))
        }
        switch format {
        case .columnar:
            if outputs.count == 1 { return .object([("outputs", value(outputs[0].tensor, outputs[0].name))]) }
            return .object([("outputs", .object(outputs.map { ($0.name, value($0.tensor, $0.name)) }))])
        case .row:
            let batch = outputs.first?.tensor.shape.first ?? 0
            let rows: [JSONValue] = (0..<batch).map { i in
                if outputs.count == 1 { return value(outputs[0].tensor.example(i), outputs[0].name) }
                return .object(outputs.map { ($0.name, value($0.tensor.example(i), $0.name)) })
            }
            return .object([("predictions", .array(rows))])
        }
    }
}

extension Tensor {
    /// Entry `i` of the batch (the first dimension).
    public func example(_ i: Int) -> Tensor {
        let inner = Array(shape.dropFirst())
        let size = inner.reduce(1, *)
        let range = (i * size)..<((i + 1) * size)
        switch values {
        case .numbers(let n): return Tensor(dtype: dtype, shape: inner, values: .numbers(Array(n[range])))
        case .strings(let s): return Tensor(dtype: dtype, shape: inner, values: .strings(Array(s[range])))
        case .bools(let b): return Tensor(dtype: dtype, shape: inner, values: .bools(Array(b[range])))
        }
    }
}
