import Foundation

/// Reads a Keras model config JSON into layer specs: the `model_config`
/// attribute of an HDF5 file (tf_keras / Keras 2, or Keras 3's legacy `.h5`)
/// or the `config.json` of a Keras 3 `.keras` archive. Functional and
/// Sequential models with one input and one output; each layer called once.
package struct KerasModelConfig {
    package var name: String
    package var specs: [LayerSpec]
    package var output: String
    /// The name of the model's input: its input layer's (for a tf_keras
    /// Sequential model built without one, Keras's `<first layer>_input`).
    package var inputName: String
    /// The input's shape per example, as the model declares it
    /// (`[28, 28]`, `[784]`, `[224, 224, 3]`).
    package var inputDims: [Int]
    /// Dimensions per example of the output (1 for a vector, 3 for an image).
    package var outputRank: Int
    /// Every layer's name and Keras class, in the config's order (which is
    /// the order of `model.layers`, so of Keras 3's weight paths).
    package var layerClasses: [(name: String, className: String)]

    package init(json: String) throws {
        guard let data = json.data(using: .utf8),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError("model_config is not valid JSON")
        }
        let className = root["class_name"] as? String ?? "?"
        guard let config = root["config"] as? [String: Any],
              let layers = config["layers"] as? [[String: Any]] else {
            throw ModelError("model_config has no layer list")
        }
        name = config["name"] as? String ?? "model"
        layerClasses = layers.map { layer in
            let cfg = layer["config"] as? [String: Any] ?? [:]
            return (((layer["name"] ?? cfg["name"]) as? String) ?? "?", layer["class_name"] as? String ?? "?")
        }
        var inputDims: [Int]?
        var inputName: String?
        switch className {
        case "Functional", "Model":
            specs = try layers.map { try Self.spec($0, previous: nil) }
            let inputs = Self.historyNames(config["input_layers"] ?? [])
            let outputs = Self.historyNames(config["output_layers"] ?? [])
            guard inputs.count <= 1 else { throw ModelError("the model has \(inputs.count) inputs (\(inputs.joined(separator: ", "))); one is supported") }
            guard outputs.count <= 1 else { throw ModelError("the model has \(outputs.count) outputs (\(outputs.joined(separator: ", "))); one is supported") }
            output = outputs.first ?? specs.last?.name ?? ""
            inputName = inputs.first
        case "Sequential":
            var list: [LayerSpec] = []
            for layer in layers {
                let cfg = layer["config"] as? [String: Any] ?? [:]
                if list.isEmpty, layer["class_name"] as? String != "InputLayer",
                   let shape = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as? [Any] {
                    // tf_keras names the input it makes for such a model after its first layer.
                    let first = (layer["name"] ?? cfg["name"]) as? String ?? "input"
                    let dims = try Self.dims(shape, layer: first)
                    list.append(LayerSpec("\(first)_input", .input(Self.shape(dims)), inputs: []))
                    inputDims = dims
                }
                list.append(try Self.spec(layer, previous: list.last?.name))
            }
            specs = list
            output = list.last?.name ?? ""
        default:
            throw ModelError("unsupported model class '\(className)' (Functional or Sequential)")
        }
        guard !specs.isEmpty else { throw ModelError("the model has no layers") }
        let inputLayers = layers.filter { $0["class_name"] as? String == "InputLayer" }
        guard inputLayers.count <= 1 else { throw ModelError("the model has \(inputLayers.count) inputs; one is supported") }
        if let layer = inputLayers.first {
            let cfg = layer["config"] as? [String: Any] ?? [:]
            let layerName = ((layer["name"] ?? cfg["name"]) as? String) ?? "input"
            guard let shape = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as? [Any] else {
                throw ModelError("input layer '\(layerName)' has no shape")
            }
            inputDims = try Self.dims(shape, layer: layerName)
            inputName = inputName ?? layerName
        }
        guard let inputDims else { throw ModelError("the model declares no input shape (no input layer)") }
        self.inputDims = inputDims
        self.inputName = inputName ?? specs.first { $0.inputs.isEmpty }?.name ?? "input"
        outputRank = try Self.outputRank(specs, output: output, inputRank: inputDims.count)
    }

    /// Layer names referenced in an inbound-nodes or output-layers structure.
    static func historyNames(_ value: Any) -> [String] {
        if let dict = value as? [String: Any] {
            if let history = dict["keras_history"] as? [Any], let name = history.first as? String { return [name] }
            // Keras 3 nodes: the tensors a layer reads are its call's `args`.
            if let args = dict["args"] { return historyNames(args) }
            return dict.keys.sorted().flatMap { historyNames(dict[$0]!) }
        }
        guard let list = value as? [Any] else { return [] }
        // tf_keras: ["name", nodeIndex, tensorIndex, {kwargs}]
        if let name = list.first as? String, list.count >= 3, list[1] is NSNumber { return [name] }
        return list.flatMap { historyNames($0) }
    }

    /// The per-example dimensions of a batch shape (`[null, 28, 28]` → `[28, 28]`).
    static func dims(_ batchShape: [Any], layer: String) throws -> [Int] {
        let dims = batchShape.dropFirst().map { ($0 as? NSNumber)?.intValue ?? -1 }
        let shown = "[" + batchShape.map { ($0 as? NSNumber)?.description ?? "null" }.joined(separator: ", ") + "]"
        guard (1...3).contains(dims.count) else {
            throw ModelError("input layer '\(layer)': unsupported input shape \(shown) (1 to 3 dimensions per example)")
        }
        guard dims.allSatisfy({ $0 > 0 }) else {
            throw ModelError("input layer '\(layer)': unsupported input shape \(shown) (every dimension but the batch must be known)")
        }
        return dims
    }

    /// The engine's shape for per-example dimensions: an image is
    /// height × width × channels; a vector is 1 × 1 × n; a matrix (a
    /// sequence of vectors) is 1 × rows × columns, so that its last axis is
    /// the channel axis, which per-channel layers act on, as in Keras.
    static func shape(_ dims: [Int]) -> Shape {
        switch dims.count {
        case 1: return Shape(vector: dims[0])
        case 2: return Shape(height: 1, width: dims[0], channels: dims[1])
        default: return Shape(height: dims[0], width: dims[1], channels: dims[2])
        }
    }

    /// Follows each layer's rank (dimensions per example) from the input to
    /// `output`, refusing layers that Keras would apply differently to the
    /// rank they get than the engine does: image layers need images, and
    /// Dense, which Keras applies to the last axis, needs a vector.
    private static func outputRank(_ specs: [LayerSpec], output: String, inputRank: Int) throws -> Int {
        var rank: [String: Int] = [:]
        for spec in specs {
            let inputs = spec.inputs.compactMap { rank[$0] }
            let first = inputs.first ?? inputRank
            func needs(_ wanted: Int, _ what: String) throws {
                guard first == wanted else {
                    throw ModelError("layer '\(spec.name)': \(what), got an input of \(first) dimension\(first == 1 ? "" : "s") per example")
                }
            }
            switch spec.kind {
            case .input:
                rank[spec.name] = inputRank
            case .conv2D, .depthwiseConv2D, .maxPool, .averagePool, .zeroPadding:
                try needs(3, "needs an image input (height × width × channels)")
                rank[spec.name] = 3
            case .globalAveragePool:
                try needs(3, "needs an image input (height × width × channels)")
                rank[spec.name] = 1
            case .dense:
                try needs(1, "Dense applies to the last axis of a matrix or image, which is not supported (Flatten first)")
                rank[spec.name] = 1
            case .flatten:
                rank[spec.name] = 1
            case .reshape(let target):
                rank[spec.name] = target.count
            case .batchNormalization, .activation, .relu, .softmax, .dropout, .concatenate, .add:
                rank[spec.name] = first
            }
        }
        return rank[output] ?? inputRank
    }
}
