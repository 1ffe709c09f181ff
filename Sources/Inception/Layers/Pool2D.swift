/// Max and average pooling. Padded positions never count: `same` max pooling
/// ignores them and `same` average pooling divides by the number of real
/// pixels in the window, as TensorFlow does.
package struct Pool2D: Layer {
    package enum Mode: Sendable { case max, average }
    package let mode: Mode
    package let window: Window
    /// Added to every output pixel after pooling, then the activation: set
    /// when a following 1×1 convolution's bias and activation move here (see
    /// `GraphBuilder.poolAfterPointwise`).
    package var bias: [Float]?
    package var activation: Activation = .linear

    package init(mode: Mode, window: Window) {
        self.mode = mode
        self.window = window
    }

    package var kind: String { mode == .max ? "MaxPooling2D" : "AveragePooling2D" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("\(kind) takes one input") }
        return try window.outputShape(inputs[0], channels: inputs[0].channels)
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let g = window.geometry(input.shape)
        let out = output.shape
        let c = out.channels
        let inH = input.shape.height, inW = input.shape.width
        let isMax = mode == .max
        let activation = activation
        let epilogue = activation != .linear || bias != nil
        bias.withBaseAddress { bias in
            Parallel.forEachChunk(batch * out.height, minChunk: 2) { rows in
                for row in rows {
                    let n = row / out.height, oy = row % out.height
                    let y0 = max(0, oy * window.strideH - g.padTop)
                    let y1 = min(inH, oy * window.strideH - g.padTop + window.kernelH)
                    for ox in 0..<out.width {
                        let x0 = max(0, ox * window.strideW - g.padLeft)
                        let x1 = min(inW, ox * window.strideW - g.padLeft + window.kernelW)
                        let dst = output.pixel(n, oy, ox)
                        dst.update(from: input.pixel(n, y0, x0), count: c)
                        for y in y0..<y1 {
                            for x in x0..<x1 where y != y0 || x != x0 {
                                let src = input.pixel(n, y, x)
                                if isMax {
                                    for k in 0..<c { dst[k] = max(dst[k], src[k]) }
                                } else {
                                    for k in 0..<c { dst[k] += src[k] }
                                }
                            }
                        }
                        if !isMax {
                            let scale = 1 / Float((y1 - y0) * (x1 - x0))
                            for k in 0..<c { dst[k] *= scale }
                        }
                        if epilogue { activation.apply(rows: 0..<1, cols: c, dst, ld: 0, bias: bias) }
                    }
                }
            }
        }
    }
}
