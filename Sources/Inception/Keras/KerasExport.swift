/// What a Keras model looks like once Keras exports it as a TensorFlow
/// SavedModel, the form TF Serving serves: its signature keys, the names of
/// its input and output in them, and how the exported graph takes an input
/// that is not shaped `[batch] + input shape`.
///
/// Established by exporting the quickstart fixtures with TensorFlow 2.21
/// (tf_keras 2.21 `model.save(path, save_format="tf")` for the Keras 2 file,
/// Keras 3.15 `model.export(path)` for the `.keras` archive) and running the
/// exported graphs in a TensorFlow session as TF Serving does; see
/// docs/tf-serving.md, and Tests/TFServingClient/tutorial_client.py, which
/// repeats the export in the tests.
public struct KerasExport: Sendable, Equatable {
    /// How the exported graph's leading `Flatten` reshapes the input
    /// (TensorFlow does not check a fed tensor against the signature's shape).
    public enum FlattenReshape: String, Sendable, Codable {
        /// tf_keras, and Keras 3 before 3.11: to `[-1, n]`, so any tensor
        /// whose size is a multiple of an example's `n` values is taken, as
        /// size / n examples (a flat list of 784 values is one 28×28 example).
        case anySize = "any_size"
        /// Keras 3.11 and later: to `[d0, n]` with the tensor's own first
        /// dimension `d0`, so the rest of the tensor must hold exactly `n`
        /// values.
        case firstDimension = "first_dimension"
    }

    /// The signatures the export has, all alike: `serving_default` (and
    /// `serve`, Keras 3's endpoint name).
    public var signatureKeys: [String]
    /// The input's key in the signatures: the model's input layer's name.
    public var inputName: String
    /// The output's key: the output layer's name (Keras 2), or `output_0`
    /// (Keras 3, whose exported function returns a bare tensor).
    public var outputName: String
    /// Set when every layer that reads the input is a `Flatten`: then the
    /// input's shape matters only as this reshape allows.
    public var flatten: FlattenReshape?

    public init(signatureKeys: [String], inputName: String, outputName: String, flatten: FlattenReshape?) {
        self.signatureKeys = signatureKeys
        self.inputName = inputName
        self.outputName = outputName
        self.flatten = flatten
    }

    /// The export of a model read from `config`, written by Keras
    /// `kerasVersion` (e.g. "2.21.0", "3.15.1"; nil: assume `defaultMajor`).
    init(config: KerasModelConfig, kerasVersion: String?, defaultMajor: Int) {
        let parts = (kerasVersion ?? "").split(separator: ".").map { Int($0) ?? 0 }
        let major = parts.first.flatMap { $0 > 0 ? $0 : nil } ?? defaultMajor
        let minor = parts.count > 1 ? parts[1] : 0
        let inputSpec = config.specs.first { $0.inputs.isEmpty }?.name
        let readers = config.specs.filter { $0.inputs.contains { $0 == inputSpec } }
        let flattened = !readers.isEmpty && readers.allSatisfy { if case .flatten = $0.kind { true } else { false } }
        if major >= 3 {
            self.init(signatureKeys: ["serve", "serving_default"], inputName: config.inputName, outputName: "output_0",
                      flatten: flattened ? (minor >= 11 ? .firstDimension : .anySize) : nil)
        } else {
            self.init(signatureKeys: ["serving_default"], inputName: config.inputName, outputName: config.output,
                      flatten: flattened ? .anySize : nil)
        }
    }
}
