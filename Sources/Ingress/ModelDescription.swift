/// What the ingress tells clients about the model it forwards to: enough for
/// `/metadata` and `/label` without loading weights into the ingress.
public struct ModelDescription: Sendable {
    public var name: String
    public var version: Int
    /// Height, width, channels of the model's input.
    public var inputShape: [Int]
    public var labels: [String]

    public init(name: String, version: Int = 1, inputShape: [Int], labels: [String]) {
        self.name = name
        self.version = version
        self.inputShape = inputShape
        self.labels = labels
    }

    /// TF Serving's `GET /v1/models/{name}/metadata` JSON for the image signature:
    /// encoded images in, the top-1 label and the class scores out.
    public var metadata: [String: Any] {
        func tensor(_ dtype: String, _ dims: [Int], _ name: String) -> [String: Any] {
            ["dtype": dtype, "name": name,
             "tensor_shape": ["dim": dims.map { ["size": String($0), "name": ""] }, "unknown_rank": false]]
        }
        let signature: [String: Any] = [
            "inputs": ["image": tensor("DT_STRING", [-1], "image:0")],
            "outputs": [
                "prediction": tensor("DT_STRING", [-1], "prediction:0"),
                "scores": tensor("DT_FLOAT", [-1, labels.count], "scores:0"),
            ],
            "method_name": "tensorflow/serving/predict",
        ]
        return [
            "model_spec": ["name": name, "signature_name": "", "version": String(version)],
            "metadata": ["signature_def": ["signature_def": ["serving_default": signature]]],
        ]
    }
}
