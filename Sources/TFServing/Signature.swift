/// A model signature as TF Serving describes it (`SignatureDef`): named,
/// typed inputs and outputs and the method it implements.
public struct Signature: Sendable, Equatable {
    /// One named tensor: dtype and static shape (-1 for the batch or any
    /// unknown dimension).
    public struct TensorSpec: Sendable, Equatable {
        public var name: String
        public var dtype: Tensor.DataType
        public var shape: [Int]

        public init(name: String, dtype: Tensor.DataType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    public static let predictMethod = "tensorflow/serving/predict"
    public static let classifyMethod = "tensorflow/serving/classify"
    /// TF Serving's default signature key.
    public static let defaultKey = "serving_default"

    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]
    public var method: String

    public init(inputs: [TensorSpec], outputs: [TensorSpec], method: String = Signature.predictMethod) {
        self.inputs = inputs
        self.outputs = outputs
        self.method = method
    }

    public func input(named name: String) -> TensorSpec? { inputs.first { $0.name == name } }
}
