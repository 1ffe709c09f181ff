import Foundation

extension KerasModelConfig {
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

    /// One layer of the config as a spec; `previous` is the layer before it
    /// in a Sequential model.
    static func spec(_ layer: [String: Any], previous: String?) throws -> LayerSpec {
        let className = layer["class_name"] as? String ?? "?"
        let cfg = layer["config"] as? [String: Any] ?? [:]
        guard let name = (layer["name"] ?? cfg["name"]) as? String else { throw ModelError("a \(className) layer has no name") }
        if let nodes = layer["inbound_nodes"] as? [Any], nodes.count > 1 {
            throw ModelError("layer '\(name)' is called \(nodes.count) times in the model; shared layers are not supported")
        }
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
        if let value = cfg["activation"], !(value is String) {
            throw ModelError("layer '\(name)': unsupported activation \(value) (only Keras's built-in activations, by name)")
        }
        let activation = cfg["activation"] as? String ?? "linear"
        let useBias = cfg["use_bias"] as? Bool ?? true
        let kind: LayerSpec.Kind
        switch className {
        case "InputLayer":
            guard let batchShape = (cfg["batch_input_shape"] ?? cfg["batch_shape"]) as? [Any] else {
                throw ModelError("input layer '\(name)' has no shape")
            }
            kind = .input(shape(try dims(batchShape, layer: name)))
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
            if let axis = (cfg["axis"] as? NSNumber)?.intValue ?? (cfg["axis"] as? [NSNumber])?.first?.intValue, axis != -1 {
                throw ModelError("layer '\(name)': Softmax over axis \(axis) is not supported (only the last axis)")
            }
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
