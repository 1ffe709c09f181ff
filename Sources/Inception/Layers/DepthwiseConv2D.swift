/// A depthwise 2-D convolution (kernel [kh][kw][C][multiplier]) with bias and
/// a fused activation; output channel c·multiplier+m reads input channel c.
package struct DepthwiseConv2D: Layer {
    package let window: Window
    package let channels: Int
    package let multiplier: Int
    /// [kh][kw][C·multiplier], Keras's layout flattened.
    package var weights: [Float]
    package var bias: [Float]?
    package var activation: Activation

    package init(window: Window, channels: Int, multiplier: Int, weights: [Float], bias: [Float]?, activation: Activation) {
        precondition(weights.count == window.kernelH * window.kernelW * channels * multiplier)
        self.window = window
        self.channels = channels
        self.multiplier = multiplier
        self.weights = weights
        self.bias = bias
        self.activation = activation
    }

    package var kind: String { "DepthwiseConv2D" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1, inputs[0].channels == channels else {
            throw ModelError("DepthwiseConv2D expects \(channels) input channels, got \(inputs.map(\.description))")
        }
        return try window.outputShape(inputs[0], channels: channels * multiplier)
    }

    package func macs(inputs: [Shape]) -> Int {
        guard let out = try? outputShape(for: inputs) else { return 0 }
        return out.count * window.kernelH * window.kernelW
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let g = window.geometry(input.shape)
        let out = output.shape
        let inH = input.shape.height, inW = input.shape.width
        let cin = channels, mult = multiplier, cout = out.channels
        weights.withUnsafeBufferPointer { wb in
            let w = wb.baseAddress!
            let b = bias
            Parallel.forEachChunk(batch * out.height, minChunk: 2) { rows in
                for row in rows {
                    let n = row / out.height, oy = row % out.height
                    for ox in 0..<out.width {
                        let dst = output.pixel(n, oy, ox)
                        if let b { for k in 0..<cout { dst[k] = b[k] } } else { dst.update(repeating: 0, count: cout) }
                        for ky in 0..<window.kernelH {
                            let iy = oy * window.strideH + ky - g.padTop
                            if iy < 0 || iy >= inH { continue }
                            for kx in 0..<window.kernelW {
                                let ix = ox * window.strideW + kx - g.padLeft
                                if ix < 0 || ix >= inW { continue }
                                let src = input.pixel(n, iy, ix)
                                let wk = w + (ky * window.kernelW + kx) * cout
                                if mult == 1 {
                                    for k in 0..<cin { dst[k] += src[k] * wk[k] }
                                } else {
                                    for k in 0..<cin {
                                        for m in 0..<mult { dst[k * mult + m] += src[k] * wk[k * mult + m] }
                                    }
                                }
                            }
                        }
                    }
                    activation.apply(rows: 0..<out.width, cols: cout, output.pixel(n, oy, 0), ld: output.pixelStride, bias: nil)
                }
            }
        }
    }
}
