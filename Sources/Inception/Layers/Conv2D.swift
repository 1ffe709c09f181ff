/// A 2-D convolution (NHWC, kernel [kh][kw][in][out]) with bias and a fused
/// activation, computed as matrix products: a 1×1 stride-1 convolution
/// multiplies the input in place; any other kernel goes through im2col into a
/// bounded workspace, one `sgemm` per chunk of output rows.
package struct Conv2D: Layer {
    package var window: Window
    package let inChannels: Int
    package let outChannels: Int
    /// [kh·kw·in][out], row-major: exactly Keras's kernel layout.
    package var weights: [Float]
    package var bias: [Float]?
    package var activation: Activation

    /// Largest im2col buffer, in floats (16 MiB).
    package static let workspaceBudget = 4 << 20

    package var kind: String { "Conv2D" }

    package init(window: Window, inChannels: Int, outChannels: Int, weights: [Float], bias: [Float]?, activation: Activation) {
        precondition(weights.count == window.kernelH * window.kernelW * inChannels * outChannels)
        self.window = window
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.weights = weights
        self.bias = bias
        self.activation = activation
    }

    private var isPointwise: Bool {
        window.kernelH == 1 && window.kernelW == 1 && window.strideH == 1 && window.strideW == 1
    }

    private var patch: Int { window.kernelH * window.kernelW * inChannels }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1, inputs[0].channels == inChannels else {
            throw ModelError("Conv2D expects \(inChannels) input channels, got \(inputs.map(\.description))")
        }
        return try window.outputShape(inputs[0], channels: outChannels)
    }

    package func macs(inputs: [Shape]) -> Int {
        guard let out = try? outputShape(for: inputs) else { return 0 }
        return out.pixels * patch * outChannels
    }

    private func rowsPerChunk(totalRows: Int) -> Int {
        min(totalRows, max(1, Self.workspaceBudget / patch))
    }

    package func workspaceSize(inputs: [Shape], batch: Int) -> Int {
        if isPointwise { return 0 }
        guard let out = try? outputShape(for: inputs) else { return 0 }
        return rowsPerChunk(totalRows: batch * out.pixels) * patch
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let rows = batch * output.shape.pixels
        weights.withUnsafeBufferPointer { w in
            withBias { b in
                if isPointwise {
                    BLAS.sgemm(m: rows, n: outChannels, k: inChannels,
                               a: input.base, lda: input.pixelStride,
                               b: w.baseAddress!, ldb: outChannels,
                               c: output.base, ldc: output.pixelStride)
                    activation.apply(to: output, batch: batch, bias: b)
                    return
                }
                let chunk = rowsPerChunk(totalRows: rows)
                var start = 0
                while start < rows {
                    let count = min(chunk, rows - start)
                    im2col(input, output.shape, rows: start..<(start + count), into: workspace)
                    let c = output.base + start * output.pixelStride
                    BLAS.sgemm(m: count, n: outChannels, k: patch,
                               a: workspace, lda: patch,
                               b: w.baseAddress!, ldb: outChannels,
                               c: c, ldc: output.pixelStride)
                    if activation != .linear || b != nil {
                        Parallel.forEachChunk(count, minChunk: 256) { r in
                            activation.apply(rows: r, cols: outChannels, c, ld: output.pixelStride, bias: b)
                        }
                    }
                    start += count
                }
            }
        }
    }

    private func withBias<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let bias else { return body(nil) }
        return bias.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// Writes one patch row (kh·kw·in floats, zeros where the window hangs
    /// over the edge) per output pixel in `rows` (numbered across the batch).
    private func im2col(_ input: TensorView, _ out: Shape, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let g = window.geometry(input.shape)
        let inH = input.shape.height, inW = input.shape.width, cin = inChannels
        let kh = window.kernelH, kw = window.kernelW, sh = window.strideH, sw = window.strideW
        let patch = self.patch
        let first = rows.lowerBound
        Parallel.forEachChunk(rows.count, minChunk: 64) { part in
            for local in part {
                let r = first + local
                let n = r / out.pixels
                let p = r % out.pixels
                let oy = p / out.width, ox = p % out.width
                var d = dst + local * patch
                for ky in 0..<kh {
                    let iy = oy * sh + ky - g.padTop
                    if iy < 0 || iy >= inH {
                        d.update(repeating: 0, count: kw * cin)
                        d += kw * cin
                        continue
                    }
                    for kx in 0..<kw {
                        let ix = ox * sw + kx - g.padLeft
                        if ix < 0 || ix >= inW {
                            d.update(repeating: 0, count: cin)
                        } else {
                            d.update(from: input.pixel(n, iy, ix), count: cin)
                        }
                        d += cin
                    }
                }
            }
        }
    }
}
