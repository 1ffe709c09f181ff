import Foundation

/// Turns layer specs plus weights into a graph of layers: checks every weight
/// shape, folds BatchNormalization into the convolution or dense layer before
/// it, and fuses activations into the layer that produces their input.
package struct GraphBuilder {
    /// A layer under construction, kept concrete so that later layers can fold into it.
    private enum Pending {
        case conv(Conv2D)
        case depthwise(DepthwiseConv2D)
        case dense(Dense)
        case affine(ChannelAffine)
        case add(Add)
        case other(any Layer)

        var layer: any Layer {
            switch self {
            case .conv(let l): return l
            case .depthwise(let l): return l
            case .dense(let l): return l
            case .affine(let l): return l
            case .add(let l): return l
            case .other(let l): return l
            }
        }

        /// Applies y = x·scale + shift per output channel, if this layer can absorb it.
        mutating func fold(scale: [Float], shift: [Float]) -> Bool {
            func folded(_ w: inout [Float], _ b: [Float]?, columns: Int) -> [Float] {
                for i in 0..<w.count { w[i] *= scale[i % columns] }
                return (0..<columns).map { (b?[$0] ?? 0) * scale[$0] + shift[$0] }
            }
            switch self {
            case .conv(var l) where l.activation == .linear:
                l.bias = folded(&l.weights, l.bias, columns: l.outChannels); self = .conv(l)
            case .depthwise(var l) where l.activation == .linear:
                l.bias = folded(&l.weights, l.bias, columns: l.channels * l.multiplier); self = .depthwise(l)
            case .dense(var l) where l.activation == .linear:
                l.bias = folded(&l.weights, l.bias, columns: l.units); self = .dense(l)
            default:
                return false
            }
            return true
        }

        /// Sets the activation, if this layer has a linear one to replace.
        mutating func fuse(_ activation: Activation) -> Bool {
            switch self {
            case .conv(var l) where l.activation == .linear: l.activation = activation; self = .conv(l)
            case .depthwise(var l) where l.activation == .linear: l.activation = activation; self = .depthwise(l)
            case .dense(var l) where l.activation == .linear: l.activation = activation; self = .dense(l)
            case .affine(var l) where l.activation == .linear: l.activation = activation; self = .affine(l)
            case .add(var l) where l.activation == .linear: l.activation = activation; self = .add(l)
            default: return false
            }
            return true
        }
    }

    private var pending: [Pending] = []
    private var nodes: [Node] = []
    /// Keras layer name → node index.
    private var index: [String: Int] = [:]
    /// How many layers read each Keras layer's output.
    private var consumers: [String: Int] = [:]

    /// Builds the graph. `weights` gives each weighted layer's arrays in Keras's order.
    package static func build(_ specs: [LayerSpec], output: String?, weights: [String: [WeightArray]]) throws -> Graph {
        var builder = GraphBuilder()
        for spec in specs { for input in spec.inputs { builder.consumers[input, default: 0] += 1 } }
        for spec in specs { try builder.add(spec, weights: weights[spec.name]) }
        guard let last = specs.last else { throw ModelError("the model has no layers") }
        let outputName = output ?? last.name
        guard let outputIndex = builder.index[outputName] else {
            throw ModelError("output layer '\(outputName)' is not in the model")
        }
        for i in builder.nodes.indices { builder.nodes[i].layer = builder.pending[i].layer }
        builder.poolAfterPointwise()
        for i in builder.nodes.indices {
            guard var conv = builder.nodes[i].layer as? Conv2D, let input = builder.nodes[i].inputs.first else { continue }
            conv.prepare(input: builder.nodes[input].shape)
            builder.nodes[i].layer = conv
        }
        return try Graph(nodes: builder.nodes, output: outputIndex)
    }

    /// Average pooling followed by a 1×1 convolution (the pool branch of an
    /// Inception block) becomes the convolution, without bias or activation,
    /// followed by the pooling, which adds the bias and applies the
    /// activation: both are linear and an average's weights sum to one, so
    /// the result is the same, but the pooling runs on the (4–10× narrower)
    /// output, and the convolution now reads the block's input and joins the
    /// other 1×1 convolutions of that input in one product.
    private mutating func poolAfterPointwise() {
        var readers = [Int](repeating: 0, count: nodes.count)
        for node in nodes { for input in node.inputs { readers[input] += 1 } }
        for c in nodes.indices {
            guard nodes[c].inputs.count == 1, var conv = nodes[c].layer as? Conv2D, conv.isPointwise else { continue }
            let p = nodes[c].inputs[0]
            guard var pool = nodes[p].layer as? Pool2D, pool.mode == .average, pool.bias == nil, pool.activation == .linear,
                  readers[p] == 1, nodes[p].inputs.count == 1,
                  conv.outChannels < conv.inChannels else { continue }
            pool.bias = conv.bias
            pool.activation = conv.activation
            conv.bias = nil
            conv.activation = .linear
            let x = nodes[nodes[p].inputs[0]].shape
            nodes[p].layer = conv
            nodes[p].shape = Shape(height: x.height, width: x.width, channels: conv.outChannels)
            nodes[c].layer = pool
        }
    }

    private mutating func add(_ spec: LayerSpec, weights: [WeightArray]?) throws {
        let inputIndices = try spec.inputs.map { name -> Int in
            guard let i = index[name] else { throw ModelError("layer '\(spec.name)' reads '\(name)', which comes later or does not exist") }
            return i
        }
        let inputShapes = inputIndices.map { nodes[$0].shape }
        var named: [String: [Float]] = [:]
        if spec.hasWeights {
            guard inputShapes.count == 1 else { throw ModelError("layer '\(spec.name)' must have one input") }
            named = try checkWeights(spec, input: inputShapes[0], weights: weights ?? [])
        }
        func value(_ short: String) -> [Float]? { named[short] }
        let soleInput = inputIndices.count == 1 ? inputIndices[0] : nil
        let canFuse = soleInput.map { consumers[nodes[$0].name] == 1 } ?? false

        switch spec.kind {
        case .input(let shape):
            try append(spec, .other(Reshape(kind: "Input", target: shape)), inputs: [], shape: shape)
            return
        case let .conv2D(filters, window, useBias, activation):
            let softmax = activation == "softmax"
            let layer = Conv2D(window: window, inChannels: inputShapes[0].channels, outChannels: filters,
                               weights: value("kernel")!, bias: useBias ? value("bias") : nil,
                               activation: softmax ? .linear : try Activation(keras: activation))
            try append(spec, .conv(layer), inputs: inputIndices, shapes: inputShapes)
            if softmax { try appendSoftmax(after: spec.name) }
        case let .depthwiseConv2D(window, multiplier, useBias, activation):
            let layer = DepthwiseConv2D(window: window, channels: inputShapes[0].channels, multiplier: multiplier,
                                        weights: value("depthwise_kernel")!, bias: useBias ? value("bias") : nil,
                                        activation: try Activation(keras: activation))
            try append(spec, .depthwise(layer), inputs: inputIndices, shapes: inputShapes)
        case let .dense(units, useBias, activation):
            let softmax = activation == "softmax"
            let layer = Dense(inputs: inputShapes[0].count, units: units, weights: value("kernel")!,
                              bias: useBias ? value("bias") : nil,
                              activation: softmax ? .linear : try Activation(keras: activation))
            try append(spec, .dense(layer), inputs: inputIndices, shapes: inputShapes)
            if softmax { try appendSoftmax(after: spec.name) }
        case let .batchNormalization(epsilon, _, _):
            let c = inputShapes[0].channels
            let gamma = value("gamma") ?? Array(repeating: 1, count: c)
            let beta = value("beta") ?? Array(repeating: 0, count: c)
            let mean = value("moving_mean")!, variance = value("moving_variance")!
            let scale = (0..<c).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
            let shift = (0..<c).map { beta[$0] - mean[$0] * scale[$0] }
            if canFuse, let i = soleInput, pending[i].fold(scale: scale, shift: shift) {
                rename(i, to: spec.name)
            } else {
                try append(spec, .affine(ChannelAffine(scale: scale, shift: shift)), inputs: inputIndices, shapes: inputShapes)
            }
        case .activation(let name) where name == "softmax":
            try append(spec, .other(Softmax()), inputs: inputIndices, shapes: inputShapes)
        case .activation(let name):
            try fuseOrAppend(spec, try Activation(keras: name), inputs: inputIndices, shapes: inputShapes, canFuse: canFuse)
        case .relu(let maxValue):
            let act: Activation
            switch maxValue {
            case nil: act = .relu
            case 6?: act = .relu6
            case let m?: throw ModelError("layer '\(spec.name)': ReLU with max_value \(m) is not supported (only none or 6)")
            }
            try fuseOrAppend(spec, act, inputs: inputIndices, shapes: inputShapes, canFuse: canFuse)
        case .softmax:
            try append(spec, .other(Softmax()), inputs: inputIndices, shapes: inputShapes)
        case .maxPool(let window):
            try append(spec, .other(Pool2D(mode: .max, window: window)), inputs: inputIndices, shapes: inputShapes)
        case .averagePool(let window):
            try append(spec, .other(Pool2D(mode: .average, window: window)), inputs: inputIndices, shapes: inputShapes)
        case .globalAveragePool:
            try append(spec, .other(GlobalAveragePool()), inputs: inputIndices, shapes: inputShapes)
        case .concatenate:
            try append(spec, .other(Concatenate(inputs: inputIndices.count)), inputs: inputIndices, shapes: inputShapes)
        case .add:
            try append(spec, .add(Add()), inputs: inputIndices, shapes: inputShapes)
        case .flatten:
            let n = inputShapes.first?.count ?? 0
            try append(spec, .other(Reshape(kind: "Flatten", target: Shape(vector: n))), inputs: inputIndices, shapes: inputShapes)
        case .reshape(let dims):
            guard (1...3).contains(dims.count), dims.allSatisfy({ $0 > 0 }) else {
                throw ModelError("layer '\(spec.name)': Reshape to \(dims) is not supported (1 to 3 known dimensions)")
            }
            let target = KerasModelConfig.shape(dims)
            try append(spec, .other(Reshape(kind: "Reshape", target: target)), inputs: inputIndices, shapes: inputShapes)
        case .dropout:
            try append(spec, .other(Reshape(kind: "Dropout", target: nil)), inputs: inputIndices, shapes: inputShapes)
        case let .zeroPadding(top, bottom, left, right):
            try append(spec, .other(ZeroPadding(top: top, bottom: bottom, left: left, right: right)), inputs: inputIndices, shapes: inputShapes)
        }
    }

    private mutating func fuseOrAppend(_ spec: LayerSpec, _ act: Activation, inputs: [Int], shapes: [Shape], canFuse: Bool) throws {
        if canFuse, let i = inputs.first, inputs.count == 1, pending[i].fuse(act) {
            rename(i, to: spec.name)
        } else {
            try append(spec, .other(ActivationLayer(act)), inputs: inputs, shapes: shapes)
        }
    }

    /// A Keras activation="softmax" on a Dense or Conv2D becomes its own node,
    /// named like the layer (the pre-softmax node keeps a "/logits" name).
    private mutating func appendSoftmax(after name: String) throws {
        let i = index[name]!
        nodes[i].name = name + "/logits"
        index[nodes[i].name] = i
        index[name] = nil
        consumers[nodes[i].name] = 1
        let spec = LayerSpec(name, .softmax, inputs: [nodes[i].name])
        try append(spec, .other(Softmax()), inputs: [i], shapes: [nodes[i].shape])
    }

    private mutating func rename(_ i: Int, to name: String) {
        nodes[i].name = name
        nodes[i].fused.append(name)
        index[name] = i
    }

    private mutating func append(_ spec: LayerSpec, _ layer: Pending, inputs: [Int], shapes: [Shape]) throws {
        let shape: Shape
        do { shape = try layer.layer.outputShape(for: shapes) } catch let error as ModelError {
            throw ModelError("layer '\(spec.name)': \(error.message)")
        }
        try append(spec, layer, inputs: inputs, shape: shape)
    }

    private mutating func append(_ spec: LayerSpec, _ layer: Pending, inputs: [Int], shape: Shape) throws {
        guard index[spec.name] == nil else { throw ModelError("two layers are named '\(spec.name)'") }
        index[spec.name] = nodes.count
        pending.append(layer)
        nodes.append(Node(name: spec.name, fused: [spec.name], layer: layer.layer, inputs: inputs, shape: shape))
    }

    /// Keras weight names look like "conv2d_5/kernel:0"; the short name is "kernel".
    package static func shortName(_ name: String) -> String {
        var short = Substring(name)
        if let slash = short.lastIndex(of: "/") { short = short[short.index(after: slash)...] }
        if let colon = short.lastIndex(of: ":") { short = short[..<colon] }
        return String(short)
    }

    /// Checks the arrays against what the layer needs, by position as Keras
    /// assigns them, and returns them by short name.
    private func checkWeights(_ spec: LayerSpec, input: Shape, weights: [WeightArray]) throws -> [String: [Float]] {
        let expected = spec.expectedWeights(input: input)
        let found = weights.map { "\($0.name) \($0.shape)" }.joined(separator: ", ")
        guard weights.count == expected.count else {
            throw ModelError("layer '\(spec.name)': expected \(expected.count) weights (\(expected.map { "\($0.name) \($0.shape)" }.joined(separator: ", "))), found \(weights.count)\(found.isEmpty ? "" : " (\(found))")")
        }
        var named: [String: [Float]] = [:]
        for (array, want) in zip(weights, expected) {
            guard array.shape == want.shape, array.values.count == want.shape.reduce(1, *) else {
                throw ModelError("layer '\(spec.name)': weight '\(array.name)' has shape \(array.shape), expected \(want.name) \(want.shape)")
            }
            named[want.name] = array.values
        }
        return named
    }
}
