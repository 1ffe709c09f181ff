/// A 2-D convolution (NHWC, kernel [kh][kw][in][out]) with bias and a fused
/// activation, computed as matrix products: a 1×1 stride-1 convolution
/// multiplies the input in place; any other kernel goes through im2col into a
/// bounded workspace, one `sgemm` per chunk of output rows.
package struct Conv2D: Layer {
    package var window: Window
    package let inChannels: Int
    package let outChannels: Int
    /// [kh·kw·in][out], row-major: exactly Keras's kernel layout. Stored
    /// transposed (see `kernel`); setting it recomputes the stored forms.
    package var weights: [Float] {
        get {
            precondition(!kernel.isEmpty, "this convolution's kernel was moved into a PointwiseGroup")
            return Self.transpose(kernel, rows: outChannels, columns: patch)
        }
        set {
            kernel = Self.transpose(newValue, rows: patch, columns: outChannels)
            if let input = preparedInput { prepare(input: input, weights: newValue) }
        }
    }
    /// The kernel as the products read it: [out][kh·kw·in] (Bᵀ), so that
    /// each output channel's weights are contiguous.
    private var kernel: [Float]
    /// The Winograd-transformed kernel [36][out][in], for stride-1 3×3 and 5×5 kernels.
    package private(set) var winograd: [Float]?
    /// One-axis Winograd and its transformed kernel [α][out][in], for stride-1 1×r and r×1 kernels.
    package private(set) var winograd1D: (plan: Winograd1D, kernel: [Float])?
    /// The per-image input shape the Winograd kernels were prepared for.
    private var preparedInput: Shape?
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
        kernel = Self.transpose(weights, rows: window.kernelH * window.kernelW * inChannels, columns: outChannels)
        self.bias = bias
        self.activation = activation
    }

    /// Makes the Winograd kernels this layer will use on images of shape
    /// `input` (called once the graph is built, after BatchNorm folding):
    /// for stride-1 3×3, 1×r and r×1 kernels with at least 8 channels each
    /// way and at least `Winograd.minimumTilesPerImage` tiles per image.
    /// Smaller maps (InceptionV3's 8×8 layers) keep im2col: their products
    /// would be too thin and the transformed weights 2–4× larger.
    package mutating func prepare(input: Shape) {
        prepare(input: input, weights: weights)
    }

    private mutating func prepare(input: Shape, weights: [Float]) {
        preparedInput = input
        winograd = nil
        winograd1D = nil
        guard Winograd.enabled, inChannels >= 8, outChannels >= 8, let out = try? outputShape(for: [input]) else { return }
        if let m = Winograd.outputTile(for: window) {
            let grid = Winograd.tiles(out, tile: m)
            if grid.rows * grid.columns >= Winograd.minimumTilesPerImage {
                winograd = Winograd.transformKernel(weights, inChannels: inChannels, outChannels: outChannels, kernel: window.kernelH)
            }
        }
        if let plan = Self.oneAxisPlan(window), plan.tiles(out, batch: 1, alongWidth: window.kernelH == 1) >= Winograd.minimumTilesPerImage {
            winograd1D = (plan, plan.transformKernel(weights, inChannels: inChannels, outChannels: outChannels))
        }
    }

    /// F(m, r) for a stride-1 1×r or r×1 kernel (r ≥ 3).
    private static func oneAxisPlan(_ w: Window) -> Winograd1D? {
        guard w.strideH == 1, w.strideW == 1, (w.kernelH == 1) != (w.kernelW == 1) else { return nil }
        let r = max(w.kernelH, w.kernelW)
        guard r >= 3 else { return nil }
        return Winograd1D(outputs: r >= 7 ? Winograd.outputsForLongKernels : 4, kernel: r)
    }

    /// Whether the one-axis Winograd runs for this output shape and batch.
    package func usesWinograd1D(_ out: Shape, batch: Int) -> Bool {
        guard let w = winograd1D, Winograd.enabled else { return false }
        return w.plan.tiles(out, batch: batch, alongWidth: window.kernelH == 1) >= Winograd.minimumTiles
    }

    /// A row-major matrix's transpose.
    private static func transpose(_ m: [Float], rows: Int, columns: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: m.count) { t, count in
            m.withUnsafeBufferPointer { m in
                for r in 0..<rows {
                    for c in 0..<columns { t[c * rows + r] = m[r * columns + c] }
                }
            }
            count = m.count
        }
    }

    /// Whether Winograd runs for this output shape and batch: enough tiles
    /// across the batch to keep its 36 products busy.
    package func usesWinograd(_ out: Shape, batch: Int) -> Bool {
        guard winograd != nil, Winograd.enabled, let m = Winograd.outputTile(for: window) else { return false }
        let grid = Winograd.tiles(out, tile: m)
        return batch * grid.rows * grid.columns >= Winograd.minimumTiles
    }

    /// The kernel as stored: [out][in·kh·kw] (each output channel's weights contiguous).
    package var transposedKernel: [Float] { kernel }

    /// Drops the kernel once a `PointwiseGroup` holds a copy and computes
    /// this layer; the layer keeps its shape, bias and activation.
    package mutating func releaseKernel() { kernel = [] }

    package var isPointwise: Bool {
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

    /// How a convolution's output rows are shared among the engine's threads:
    /// many rows → each thread takes blocks of whole rows (gather, multiply,
    /// epilogue, all in its own cache); few rows → every thread takes a slice
    /// of the output channels of one shared patch matrix.
    private struct Split {
        var byRows: Bool
        var rowsPerBlock: Int
        var workspace: Int
    }

    private func split(rows: Int) -> Split {
        let threads = Parallel.threads
        let budgetRows = max(1, Self.workspaceBudget / patch)
        if threads > 1, outChannels >= 16 * threads, rows * patch <= Self.workspaceBudget,
           Parallel.splitsColumns(rows: rows, inner: patch, columns: outChannels) {
            return Split(byRows: false, rowsPerBlock: rows, workspace: isPointwise ? 0 : rows * patch)
        }
        let perBlock = min(budgetRows / threads + 1, (rows + threads - 1) / threads)
        let block = max(1, min(perBlock, 2048))
        return Split(byRows: true, rowsPerBlock: block, workspace: isPointwise ? 0 : threads * block * patch)
    }

    package func workspaceSize(inputs: [Shape], batch: Int) -> Int {
        guard let out = try? outputShape(for: inputs) else { return 0 }
        if usesWinograd(out, batch: batch), let m = Winograd.outputTile(for: window) {
            let grid = Winograd.tiles(out, tile: m)
            let chunk = Winograd.chunk(tiles: batch * grid.rows * grid.columns, inChannels: inChannels, outChannels: outChannels)
            return Winograd.scratch(tiles: chunk, inChannels: inChannels, outChannels: outChannels)
        }
        if usesWinograd1D(out, batch: batch), let plan = winograd1D?.plan {
            let tiles = plan.tiles(out, batch: batch, alongWidth: window.kernelH == 1)
            let chunk = plan.chunk(tiles: tiles, inChannels: inChannels, outChannels: outChannels)
            return plan.scratch(tiles: chunk, inChannels: inChannels, outChannels: outChannels)
        }
        return split(rows: batch * out.pixels).workspace
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        if usesWinograd(output.shape, batch: batch), let kernel = winograd, let tile = Winograd.outputTile(for: window) {
            let g = window.geometry(input.shape)
            kernel.withUnsafeBufferPointer { u in
                bias.withBaseAddress { b in
                    Winograd.forward(input, output, batch: batch, kernel: u.baseAddress!, bias: b, activation: activation,
                                     padTop: g.padTop, padLeft: g.padLeft, tile: tile,
                                     workspace: workspace)
                }
            }
            return
        }
        if usesWinograd1D(output.shape, batch: batch), let w = winograd1D {
            let g = window.geometry(input.shape)
            let alongWidth = window.kernelH == 1
            w.kernel.withUnsafeBufferPointer { u in
                bias.withBaseAddress { b in
                    w.plan.forward(input, output, batch: batch, alongWidth: alongWidth, kernel: u.baseAddress!, bias: b,
                                   activation: activation, padBefore: alongWidth ? g.padLeft : g.padTop, workspace: workspace)
                }
            }
            return
        }
        let rows = batch * output.shape.pixels
        let plan = split(rows: rows)
        let threads = Parallel.threads
        kernel.withUnsafeBufferPointer { w in
            bias.withBaseAddress { b in
                let weights = w.baseAddress!
                if plan.byRows {
                    let blocks = (rows + plan.rowsPerBlock - 1) / plan.rowsPerBlock
                    Parallel.forEachThread(min(threads, blocks)) { t, count in
                        let scratch = workspace + t * plan.rowsPerBlock * patch
                        var block = t
                        while block < blocks {
                            let start = block * plan.rowsPerBlock
                            let n = min(plan.rowsPerBlock, rows - start)
                            multiply(input, output, rows: start..<(start + n), columns: 0..<outChannels,
                                     weights: weights, bias: b, scratch: scratch, gather: true)
                            block += count
                        }
                    }
                } else {
                    if !isPointwise {
                        Parallel.forEachChunk(rows, minChunk: 16) { im2col(input, output.shape, rows: $0, into: workspace + $0.lowerBound * patch) }
                    }
                    let step = (outChannels + threads - 1) / threads
                    Parallel.forEachThread(threads) { t, _ in
                        let lo = min(outChannels, t * step), hi = min(outChannels, lo + step)
                        guard lo < hi else { return }
                        multiply(input, output, rows: 0..<rows, columns: lo..<hi,
                                 weights: weights, bias: b, scratch: workspace, gather: false)
                    }
                }
            }
        }
    }

    /// One block of the product: output rows × output channels, then bias and
    /// activation on that block. `gather` fills `scratch` with the rows' patches
    /// first (otherwise they are already there, for all rows).
    @inline(__always)
    private func multiply(_ input: TensorView, _ output: TensorView, rows: Range<Int>, columns: Range<Int>,
                          weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          scratch: UnsafeMutablePointer<Float>, gather: Bool) {
        let a: UnsafePointer<Float>, lda: Int
        if isPointwise {
            a = UnsafePointer(input.base + rows.lowerBound * input.pixelStride)
            lda = input.pixelStride
        } else {
            if gather { im2col(input, output.shape, rows: rows, into: scratch) }
            a = UnsafePointer(scratch + (gather ? 0 : rows.lowerBound * patch))
            lda = patch
        }
        let c = output.base + rows.lowerBound * output.pixelStride + columns.lowerBound
        BLAS.sgemm(m: rows.count, n: columns.count, k: patch,
                   a: a, lda: lda, b: weights + columns.lowerBound * patch, ldb: patch, transposedB: true,
                   c: c, ldc: output.pixelStride)
        activation.apply(rows: 0..<rows.count, cols: columns.count, c, ld: output.pixelStride,
                         bias: bias.map { $0 + columns.lowerBound })
    }

    /// Writes one patch row (kh·kw·in floats, zeros where the window hangs
    /// over the edge) per output pixel in `rows` (numbered across the batch).
    /// Copies floats: a plain loop for short runs (a library call costs more
    /// than copying a 3-channel pixel), `memmove` for long ones.
    @inline(__always)
    private static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        if count < 32 {
            for i in 0..<count { dst[i] = src[i] }
        } else {
            dst.update(from: src, count: count)
        }
    }

    private func im2col(_ input: TensorView, _ out: Shape, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let g = window.geometry(input.shape)
        let inH = input.shape.height, inW = input.shape.width, cin = inChannels
        let kh = window.kernelH, kw = window.kernelW, sh = window.strideH, sw = window.strideW
        let dense = input.pixelStride == cin
        var d = dst
        for r in rows {
            let n = r / out.pixels
            let p = r % out.pixels
            let oy = p / out.width, ox = p % out.width
            for ky in 0..<kh {
                let iy = oy * sh + ky - g.padTop
                if iy < 0 || iy >= inH {
                    d.update(repeating: 0, count: kw * cin)
                    d += kw * cin
                    continue
                }
                let ix0 = ox * sw - g.padLeft
                if dense, ix0 >= 0, ix0 + kw <= inW {
                    // The window's row is kw·cin consecutive floats.
                    Self.copy(input.pixel(n, iy, ix0), to: d, count: kw * cin)
                    d += kw * cin
                    continue
                }
                for kx in 0..<kw {
                    let ix = ix0 + kx
                    if ix < 0 || ix >= inW {
                        d.update(repeating: 0, count: cin)
                    } else {
                        Self.copy(input.pixel(n, iy, ix), to: d, count: cin)
                    }
                    d += cin
                }
            }
        }
    }
}
