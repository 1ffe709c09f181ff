import Foundation

/// Reads a Keras `model_config` JSON (Functional or Sequential, as tf_keras /
/// Keras 2 write it; Keras 3's `keras_history` inbound form is read too) into
/// layer specs.
package struct KerasModelConfig {
    package var name: String
    package var specs: [LayerSpec]
    package var output: String

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
        switch className {
        case "Functional", "Model":
            specs = try layers.map { try Self.spec($0, previous: nil) }
            if let outputs = config["output_layers"] as? [Any], let first = Self.historyNames(outputs).first {
                output = first
            } else {
                output = specs.last?.name ?? ""
            }
        case "Sequential":
            var list: [LayerSpec] = []
            for layer in layers {
                let cfg = layer["config"] as? [String: Any] ?? [:]
                if list.isEmpty, layer["class_name"] as? String != "InputLayer",
                   let shape = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as? [Any] {
                    list.append(LayerSpec("input", .input(try Self.shape(shape)), inputs: []))
                }
                list.append(try Self.spec(layer, previous: list.last?.name))
            }
            specs = list
            output = list.last?.name ?? ""
        default:
            throw ModelError("unsupported model class '\(className)' (Functional or Sequential)")
        }
        guard !specs.isEmpty else { throw ModelError("the model has no layers") }
    }

    /// Layer names referenced in an inbound-nodes or output-layers structure.
    private static func historyNames(_ value: Any) -> [String] {
        if let dict = value as? [String: Any] {
            if let history = dict["keras_history"] as? [Any], let name = history.first as? String { return [name] }
            return dict.keys.sorted().flatMap { historyNames(dict[$0]!) }
        }
        guard let list = value as? [Any] else { return [] }
        // tf_keras: ["name", nodeIndex, tensorIndex, {kwargs}]
        if let name = list.first as? String, list.count >= 3, list[1] is NSNumber { return [name] }
        return list.flatMap { historyNames($0) }
    }

    private static func shape(_ dims: [Any]) throws -> Shape {
        let ints = dims.dropFirst().compactMap { ($0 as? NSNumber)?.intValue }
        switch ints.count {
        case 1: return Shape(vector: ints[0])
        case 3: return Shape(height: ints[0], width: ints[1], channels: ints[2])
        default: throw ModelError("unsupported input shape \(dims) (HWC images or vectors)")
        }
    }

    private static func pair(_ value: Any?, default fallback: Int) -> (Int, Int) {
        if let n = value as? NSNumber { return (n.intValue, n.intValue) }
        if let list = value as? [NSNumber], list.count == 2 { return (list[0].intValue, list[1].intValue) }
        return (fallback, fallback)
    }

    private static func padding(_ value: Any?, layer: String) throws -> Padding {
        guard let text = value as? String, let p = Padding(rawValue: text) else {
            throw ModelError("layer '\(layer)': unsupported padding \(value ?? "nil")")
        }
        return p
    }

    private static func spec(_ layer: [String: Any], previous: String?) throws -> LayerSpec {
        let className = layer["class_name"] as? String ?? "?"
        let cfg = layer["config"] as? [String: Any] ?? [:]
        guard let name = (layer["name"] ?? cfg["name"]) as? String else { throw ModelError("a \(className) layer has no name") }
        var inputs = historyNames(layer["inbound_nodes"] ?? [])
        if inputs.isEmpty, let previous, className != "InputLayer" { inputs = [previous] }
        if let format = cfg["data_format"] as? String, format != "channels_last" {
            throw ModelError("layer '\(name)': only channels_last is supported")
        }
        if let dilation = cfg["dilation_rate"], pair(dilation, default: 1) != (1, 1) {
            throw ModelError("layer '\(name)': dilated convolutions are not supported")
        }
        if let groups = cfg["groups"] as? NSNumber, groups.intValue != 1, className == "Conv2D" {
            throw ModelError("layer '\(name)': grouped convolutions are not supported")
        }
        func window(kernelKey: String, strideKey: String) throws -> Window {
            let k = pair(cfg[kernelKey], default: 1)
            let s = cfg[strideKey] is NSNull || cfg[strideKey] == nil ? k : pair(cfg[strideKey], default: 1)
            return Window(kernelH: k.0, kernelW: k.1, strideH: s.0, strideW: s.1, padding: try padding(cfg["padding"], layer: name))
        }
        let activation = cfg["activation"] as? String ?? "linear"
        let useBias = cfg["use_bias"] as? Bool ?? true
        let kind: LayerSpec.Kind
        switch className {
        case "InputLayer":
            guard let dims = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as? [Any] else {
                throw ModelError("input layer '\(name)' has no shape")
            }
            kind = .input(try shape(dims))
        case "Conv2D":
            kind = .conv2D(filters: (cfg["filters"] as? NSNumber)?.intValue ?? 0,
                           window: try window(kernelKey: "kernel_size", strideKey: "strides"),
                           useBias: useBias, activation: activation)
        case "DepthwiseConv2D":
            kind = .depthwiseConv2D(window: try window(kernelKey: "kernel_size", strideKey: "strides"),
                                    multiplier: (cfg["depth_multiplier"] as? NSNumber)?.intValue ?? 1,
                                    useBias: useBias, activation: activation)
        case "Dense":
            kind = .dense(units: (cfg["units"] as? NSNumber)?.intValue ?? 0, useBias: useBias, activation: activation)
        case "BatchNormalization":
            let axis = (cfg["axis"] as? [NSNumber])?.first?.intValue ?? (cfg["axis"] as? NSNumber)?.intValue ?? -1
            guard axis == -1 || axis == 3 || axis == 1 else {
                throw ModelError("layer '\(name)': BatchNormalization over axis \(axis) is not supported")
            }
            kind = .batchNormalization(epsilon: (cfg["epsilon"] as? NSNumber)?.floatValue ?? 0.001,
                                       center: cfg["center"] as? Bool ?? true, scale: cfg["scale"] as? Bool ?? true)
        case "Activation":
            kind = .activation(activation)
        case "ReLU":
            let slope = (cfg["negative_slope"] as? NSNumber)?.floatValue ?? 0
            let threshold = (cfg["threshold"] as? NSNumber)?.floatValue ?? 0
            guard slope == 0, threshold == 0 else { throw ModelError("layer '\(name)': leaky or thresholded ReLU is not supported") }
            kind = .relu(maxValue: (cfg["max_value"] as? NSNumber)?.floatValue)
        case "Softmax":
            kind = .softmax
        case "MaxPooling2D":
            kind = .maxPool(try window(kernelKey: "pool_size", strideKey: "strides"))
        case "AveragePooling2D":
            kind = .averagePool(try window(kernelKey: "pool_size", strideKey: "strides"))
        case "GlobalAveragePooling2D":
            kind = .globalAveragePool
        case "Concatenate":
            let axis = (cfg["axis"] as? NSNumber)?.intValue ?? -1
            guard axis == -1 || axis == 3 else { throw ModelError("layer '\(name)': only channel concatenation is supported") }
            kind = .concatenate
        case "Add":
            kind = .add
        case "Flatten":
            kind = .flatten
        case "Reshape":
            kind = .reshape((cfg["target_shape"] as? [NSNumber])?.map(\.intValue) ?? [])
        case "Dropout":
            kind = .dropout
        case "ZeroPadding2D":
            let p = cfg["padding"]
            if let rows = p as? [[NSNumber]], rows.count == 2 {
                kind = .zeroPadding(top: rows[0][0].intValue, bottom: rows[0][1].intValue,
                                    left: rows[1][0].intValue, right: rows[1][1].intValue)
            } else {
                let (h, w) = pair(p, default: 1)
                kind = .zeroPadding(top: h, bottom: h, left: w, right: w)
            }
        default:
            throw ModelError("layer '\(name)': unsupported layer class \(className)")
        }
        return LayerSpec(name, kind, inputs: inputs)
    }
}
