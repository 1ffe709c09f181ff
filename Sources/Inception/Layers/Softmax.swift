import Foundation

/// Softmax over the channels of every pixel (Keras's default axis −1).
package struct Softmax: Layer {
    package init() {}
    package var kind: String { "Softmax" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("Softmax takes one input") }
        return inputs[0]
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let c = input.shape.channels
        for n in 0..<batch {
            for p in 0..<input.shape.pixels {
                let src = input.base + n * input.batchStride + p * input.pixelStride
                let dst = output.base + n * output.batchStride + p * output.pixelStride
                var top = -Float.infinity
                for k in 0..<c { top = max(top, src[k]) }
                var sum: Float = 0
                for k in 0..<c {
                    let e = expf(src[k] - top)
                    dst[k] = e
                    sum += e
                }
                let scale = 1 / sum
                for k in 0..<c { dst[k] *= scale }
            }
        }
    }
}
