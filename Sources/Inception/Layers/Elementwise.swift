/// Add: the element-wise sum of its inputs, with a fused activation.
package struct Add: Layer {
    package var activation: Activation
    package init(activation: Activation = .linear) { self.activation = activation }
    package var kind: String { "Add" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count >= 2, inputs.allSatisfy({ $0 == inputs[0] }) else {
            throw ModelError("Add needs two or more inputs of one shape, got \(inputs.map(\.description))")
        }
        return inputs[0]
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let c = output.shape.channels
        Parallel.forEachChunk(batch * output.shape.pixels, minChunk: 256) { rows in
            for r in rows {
                let dst = output.base + r * output.pixelStride
                let a = inputs[0].base + r * inputs[0].pixelStride
                dst.update(from: a, count: c)
                for other in inputs.dropFirst() {
                    let src = other.base + r * other.pixelStride
                    for k in 0..<c { dst[k] += src[k] }
                }
            }
            activation.apply(rows: rows, cols: c, output.base, ld: output.pixelStride, bias: nil)
        }
    }
}

/// A per-channel affine map y = x·scale + shift with a fused activation: a
/// BatchNormalization that could not be folded into a preceding layer.
package struct ChannelAffine: Layer {
    package var scale: [Float]
    package var shift: [Float]
    package var activation: Activation
    package init(scale: [Float], shift: [Float], activation: Activation = .linear) {
        self.scale = scale; self.shift = shift; self.activation = activation
    }
    package var kind: String { "BatchNormalization" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1, inputs[0].channels == scale.count else {
            throw ModelError("BatchNormalization expects \(scale.count) channels, got \(inputs.map(\.description))")
        }
        return inputs[0]
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let c = scale.count
        scale.withUnsafeBufferPointer { s in
            shift.withUnsafeBufferPointer { t in
                Parallel.forEachChunk(batch * input.shape.pixels, minChunk: 256) { rows in
                    for r in rows {
                        let src = input.base + r * input.pixelStride
                        let dst = output.base + r * output.pixelStride
                        for k in 0..<c { dst[k] = src[k] * s[k] + t[k] }
                    }
                    activation.apply(rows: rows, cols: c, output.base, ld: output.pixelStride, bias: nil)
                }
            }
        }
    }
}

/// A standalone activation (ReLU, ReLU6, linear) that had no layer to fuse into.
package struct ActivationLayer: Layer {
    package var activation: Activation
    package init(_ activation: Activation) { self.activation = activation }
    package var kind: String { "Activation" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("Activation takes one input") }
        return inputs[0]
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let c = input.shape.channels
        Parallel.forEachChunk(batch * input.shape.pixels, minChunk: 256) { rows in
            for r in rows {
                (output.base + r * output.pixelStride).update(from: input.base + r * input.pixelStride, count: c)
            }
            activation.apply(rows: rows, cols: c, output.base, ld: output.pixelStride, bias: nil)
        }
    }
}
