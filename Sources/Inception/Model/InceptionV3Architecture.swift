/// InceptionV3 exactly as `keras.applications.InceptionV3(include_top=True)`
/// builds it, with the Keras 2.0 layer names of the official weights file
/// (`conv2d_1`…`conv2d_94`, `batch_normalization_1`…, `activation_1`…,
/// `mixed0`…`mixed10`), listed in Keras's layer order.
package struct InceptionV3Architecture {
    private var specs: [LayerSpec] = []
    private var counters: [String: Int] = [:]
    private let classes: Int

    /// The layer specs for a 299×299×3 input and `classes` outputs.
    package static func specs(classes: Int = 1000) -> [LayerSpec] {
        var a = InceptionV3Architecture(classes: classes)
        a.build()
        return KerasLayerOrder.sorted(a.specs, output: "predictions")
    }

    private init(classes: Int) { self.classes = classes }

    private mutating func next(_ kind: String) -> String {
        counters[kind, default: 0] += 1
        return "\(kind)_\(counters[kind]!)"
    }

    @discardableResult
    private mutating func add(_ name: String, _ kind: LayerSpec.Kind, _ inputs: [String]) -> String {
        specs.append(LayerSpec(name, kind, inputs: inputs))
        return name
    }

    /// Conv2D (no bias) → BatchNormalization (scale=False) → ReLU.
    private mutating func convBN(_ x: String, _ filters: Int, _ rows: Int, _ cols: Int,
                                 padding: Padding = .same, stride: Int = 1) -> String {
        let window = Window(kernelH: rows, kernelW: cols, strideH: stride, strideW: stride, padding: padding)
        let conv = add(next("conv2d"), .conv2D(filters: filters, window: window, useBias: false, activation: "linear"), [x])
        let bn = add(next("batch_normalization"), .batchNormalization(epsilon: 0.001, center: true, scale: false), [conv])
        return add(next("activation"), .activation("relu"), [bn])
    }

    private mutating func pool(_ mode: Pool2D.Mode, _ x: String, stride: Int, padding: Padding) -> String {
        let window = Window(kernelH: 3, kernelW: 3, strideH: stride, strideW: stride, padding: padding)
        let kind: LayerSpec.Kind = mode == .max ? .maxPool(window) : .averagePool(window)
        return add(next(mode == .max ? "max_pooling2d" : "average_pooling2d"), kind, [x])
    }

    private mutating func build() {
        let input = add("input_1", .input(Shape(height: 299, width: 299, channels: 3)), [])
        var x = convBN(input, 32, 3, 3, padding: .valid, stride: 2)
        x = convBN(x, 32, 3, 3, padding: .valid)
        x = convBN(x, 64, 3, 3)
        x = pool(.max, x, stride: 2, padding: .valid)
        x = convBN(x, 80, 1, 1, padding: .valid)
        x = convBN(x, 192, 3, 3, padding: .valid)
        x = pool(.max, x, stride: 2, padding: .valid)

        for (i, poolFilters) in [32, 64, 64].enumerated() {   // mixed0-2: 35×35
            let b1 = convBN(x, 64, 1, 1)
            var b5 = convBN(x, 48, 1, 1)
            b5 = convBN(b5, 64, 5, 5)
            var b3 = convBN(x, 64, 1, 1)
            b3 = convBN(b3, 96, 3, 3)
            b3 = convBN(b3, 96, 3, 3)
            var bp = pool(.average, x, stride: 1, padding: .same)
            bp = convBN(bp, poolFilters, 1, 1)
            x = add("mixed\(i)", .concatenate, [b1, b5, b3, bp])
        }

        do {   // mixed3: 17×17
            let b3 = convBN(x, 384, 3, 3, padding: .valid, stride: 2)
            var bd = convBN(x, 64, 1, 1)
            bd = convBN(bd, 96, 3, 3)
            bd = convBN(bd, 96, 3, 3, padding: .valid, stride: 2)
            let bp = pool(.max, x, stride: 2, padding: .valid)
            x = add("mixed3", .concatenate, [b3, bd, bp])
        }

        for (i, f) in [128, 160, 160, 192].enumerated() {   // mixed4-7
            let b1 = convBN(x, 192, 1, 1)
            var b7 = convBN(x, f, 1, 1)
            b7 = convBN(b7, f, 1, 7)
            b7 = convBN(b7, 192, 7, 1)
            var bd = convBN(x, f, 1, 1)
            bd = convBN(bd, f, 7, 1)
            bd = convBN(bd, f, 1, 7)
            bd = convBN(bd, f, 7, 1)
            bd = convBN(bd, 192, 1, 7)
            var bp = pool(.average, x, stride: 1, padding: .same)
            bp = convBN(bp, 192, 1, 1)
            x = add("mixed\(4 + i)", .concatenate, [b1, b7, bd, bp])
        }

        do {   // mixed8: 8×8
            var b3 = convBN(x, 192, 1, 1)
            b3 = convBN(b3, 320, 3, 3, padding: .valid, stride: 2)
            var b7 = convBN(x, 192, 1, 1)
            b7 = convBN(b7, 192, 1, 7)
            b7 = convBN(b7, 192, 7, 1)
            b7 = convBN(b7, 192, 3, 3, padding: .valid, stride: 2)
            let bp = pool(.max, x, stride: 2, padding: .valid)
            x = add("mixed8", .concatenate, [b3, b7, bp])
        }

        for i in 0..<2 {   // mixed9-10
            let b1 = convBN(x, 320, 1, 1)
            var b3 = convBN(x, 384, 1, 1)
            let b3a = convBN(b3, 384, 1, 3)
            let b3b = convBN(b3, 384, 3, 1)
            b3 = add("mixed9_\(i)", .concatenate, [b3a, b3b])
            var bd = convBN(x, 448, 1, 1)
            bd = convBN(bd, 384, 3, 3)
            let bda = convBN(bd, 384, 1, 3)
            let bdb = convBN(bd, 384, 3, 1)
            bd = add(next("concatenate"), .concatenate, [bda, bdb])
            var bp = pool(.average, x, stride: 1, padding: .same)
            bp = convBN(bp, 192, 1, 1)
            x = add("mixed\(9 + i)", .concatenate, [b1, b3, bd, bp])
        }

        x = add("avg_pool", .globalAveragePool, [x])
        add("predictions", .dense(units: classes, useBias: true, activation: "softmax"), [x])
    }
}
