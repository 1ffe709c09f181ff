/// One layer of a model description, before weights are attached: what the
/// Keras config (or the built-in InceptionV3 architecture) says.
package struct LayerSpec: Sendable {
    package enum Kind: Sendable {
        case input(Shape)
        case conv2D(filters: Int, window: Window, useBias: Bool, activation: String)
        case depthwiseConv2D(window: Window, multiplier: Int, useBias: Bool, activation: String)
        case dense(units: Int, useBias: Bool, activation: String)
        case batchNormalization(epsilon: Float, center: Bool, scale: Bool)
        case activation(String)
        case relu(maxValue: Float?)
        case softmax
        case maxPool(Window)
        case averagePool(Window)
        case globalAveragePool
        case concatenate
        case add
        case flatten
        case reshape([Int])
        case dropout
        case zeroPadding(top: Int, bottom: Int, left: Int, right: Int)
    }

    package var name: String
    package var kind: Kind
    package var inputs: [String]

    package init(_ name: String, _ kind: Kind, inputs: [String]) {
        self.name = name
        self.kind = kind
        self.inputs = inputs
    }

    /// Whether the layer carries weights in a Keras file.
    package var hasWeights: Bool {
        switch kind {
        case .conv2D, .depthwiseConv2D, .dense, .batchNormalization: return true
        default: return false
        }
    }

    /// The weights Keras stores for this layer, in Keras's order, given the
    /// layer's input shape: (short name such as "kernel", shape).
    package func expectedWeights(input: Shape) -> [(name: String, shape: [Int])] {
        switch kind {
        case let .conv2D(filters, w, useBias, _):
            let kernel = ("kernel", [w.kernelH, w.kernelW, input.channels, filters])
            return useBias ? [kernel, ("bias", [filters])] : [kernel]
        case let .depthwiseConv2D(w, multiplier, useBias, _):
            let kernel = ("depthwise_kernel", [w.kernelH, w.kernelW, input.channels, multiplier])
            return useBias ? [kernel, ("bias", [input.channels * multiplier])] : [kernel]
        case let .dense(units, useBias, _):
            let kernel = ("kernel", [input.count, units])
            return useBias ? [kernel, ("bias", [units])] : [kernel]
        case let .batchNormalization(_, center, scale):
            let c = input.channels
            var list: [(String, [Int])] = []
            if scale { list.append(("gamma", [c])) }
            if center { list.append(("beta", [c])) }
            list.append(("moving_mean", [c]))
            list.append(("moving_variance", [c]))
            return list
        default:
            return []
        }
    }
}

/// One weight array as read from a file.
package struct WeightArray: Sendable {
    package var name: String
    package var shape: [Int]
    package var values: [Float]
    package init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}
