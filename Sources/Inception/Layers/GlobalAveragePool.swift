/// GlobalAveragePooling2D: the mean over height and width, per channel.
package struct GlobalAveragePool: Layer {
    package init() {}
    package var kind: String { "GlobalAveragePooling2D" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("\(kind) takes one input") }
        return Shape(vector: inputs[0].channels)
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let c = input.shape.channels
        let scale = 1 / Float(input.shape.pixels)
        for n in 0..<batch {
            let dst = output.base + n * output.batchStride
            dst.update(repeating: 0, count: c)
            for p in 0..<input.shape.pixels {
                let src = input.base + n * input.batchStride + p * input.pixelStride
                for k in 0..<c { dst[k] += src[k] }
            }
            for k in 0..<c { dst[k] *= scale }
        }
    }
}
