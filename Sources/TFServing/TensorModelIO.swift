import Jobs

/// A tensor model's input and output as TF Serving hands them to and from
/// the model's exported graph.
///
/// TF Serving does not check an input against the signature's shape: it
/// feeds the tensor as sent, and the graph takes it or fails. Conveyor does
/// the same for the models it can tell about: the input of a model whose
/// first layer is a `Flatten` may have any shape its reshape takes (see
/// ``ServableAnnouncement/TensorSignature/Flatten``), failing with
/// TensorFlow's message otherwise; any other model's input must be shaped
/// `[batch] + inputShape`.
public enum TensorModelIO {
    /// The input shaped `[batch] + inputShape`, as the model will read it.
    ///
    /// - Throws: INVALID_ARGUMENT for a dtype other than DT_FLOAT (TF's
    ///   "Expects arg[0] to be float but double is provided") or a shape the
    ///   model's graph would not take.
    public static func batched(_ input: Tensor, info: ServableAnnouncement.Version,
                               name: String) throws(TFServingError) -> Tensor {
        guard input.dtype == .float, case .numbers = input.values else {
            throw .invalid("Expects arg[0] to be float but \(tensorFlowName(input.dtype)) is provided")
        }
        let example = info.inputShape
        let size = example.reduce(1, *)
        let count = input.elementCount
        if input.shape.count == example.count + 1, Array(input.shape.dropFirst()) == example {
            return input
        }
        let batch: Int
        switch info.tensorSignature?.flatten {
        case .anySize?:
            // Keras 2's Flatten: reshape to [-1, size].
            guard size > 0, count % size == 0 else {
                throw .invalid("Input to reshape is a tensor with \(count) values, but the requested shape requires a multiple of \(size)")
            }
            batch = count / size
        case .firstDimension?:
            // Keras 3's Flatten: reshape to [shape[0], size].
            guard let first = input.shape.first else {
                throw .invalid("Input '\(name)' must have a batch dimension, got a scalar")
            }
            guard count == first * size else {
                throw .invalid("Input to reshape is a tensor with \(count) values, but the requested shape has \(first * size)")
            }
            batch = first
        case nil:
            throw .invalid("Input '\(name)' must be of shape \([-1] + example), got \(input.shape)")
        }
        return Tensor(dtype: .float, shape: [batch] + example, values: input.values)
    }

    /// The model's output for each job, stacked: `[results.count] + outputShape`.
    /// Each result must hold every output value (its `top`, by index).
    public static func output(_ results: [JobResult], info: ServableAnnouncement.Version) throws(TFServingError) -> Tensor {
        let shape = info.tensorSignature?.outputShape ?? [info.classes]
        let size = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: results.count * size)
        for (i, result) in results.enumerated() {
            let indices = Set(result.top.map(\.index))
            guard result.top.count == size, indices == Set(0..<size) else {
                throw TFServingError(.internal, "job \(result.jobID) answered \(result.top.count) values; the model has \(size) per example")
            }
            for entry in result.top { values[i * size + entry.index] = entry.score }
        }
        return .floats(values, shape: [results.count] + shape)
    }

    /// TensorFlow's name of a dtype in its messages (`DataTypeString`).
    static func tensorFlowName(_ dtype: Tensor.DataType) -> String {
        switch dtype {
        case .float: "float"
        case .double: "double"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        case .string: "string"
        case .bool: "bool"
        }
    }
}
