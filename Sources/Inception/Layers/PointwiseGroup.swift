/// Several 1×1 stride-1 convolutions that read the same input (the first
/// layer of most branches of an Inception block) computed as one product:
/// their kernels side by side make one wider matrix, so the input is packed
/// once and the product is wide enough to run at full speed (at 8×8, three
/// products of 320–448 columns become one of 1,152). The result goes to a
/// workspace and each member's columns are copied to that member's own output
/// (often a slice of a concatenation) with its bias and activation.
package struct PointwiseGroup: Sendable {
    /// The member nodes, in graph order; the first computes them all.
    package let members: [Int]
    /// Input channels (K) and total output channels (N).
    package let inChannels: Int
    package let outChannels: Int
    /// Each member's first column in the merged product.
    private let offsets: [Int]
    private let widths: [Int]
    /// [N][K]: every member's kernel rows, one after another.
    private let kernel: [Float]
    /// [N] (zeros for members without bias).
    private let bias: [Float]
    private let activations: [Activation]

    /// Groups `members` (all `Conv2D` 1×1 stride 1 on the same input).
    package init(members: [Int], convolutions: [Conv2D]) {
        precondition(members.count == convolutions.count && members.count > 1)
        self.members = members
        inChannels = convolutions[0].inChannels
        var offsets: [Int] = [], widths: [Int] = []
        var kernel: [Float] = [], bias: [Float] = []
        for conv in convolutions {
            precondition(conv.isPointwise && conv.inChannels == inChannels)
            offsets.append(bias.count)
            widths.append(conv.outChannels)
            kernel += conv.transposedKernel
            bias += conv.bias ?? [Float](repeating: 0, count: conv.outChannels)
        }
        outChannels = bias.count
        self.offsets = offsets
        self.widths = widths
        self.kernel = kernel
        self.bias = bias
        activations = convolutions.map(\.activation)
    }

    /// Floats of workspace: the merged product for the whole batch.
    package func workspaceSize(pixels: Int, batch: Int) -> Int { batch * pixels * outChannels }

    /// Computes every member's output.
    package func forward(_ input: TensorView, _ outputs: [TensorView], batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let rows = batch * input.shape.pixels
        let threads = Parallel.threads
        let byRows = !Parallel.splitsColumns(rows: rows, inner: inChannels, columns: outChannels)
        kernel.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                let w = w.baseAddress!, b = b.baseAddress!
                Parallel.forEachThread(threads) { t, count in
                    let r: Range<Int>, c: Range<Int>
                    if byRows {
                        let step = (rows + count - 1) / count
                        r = min(rows, t * step)..<min(rows, (t + 1) * step)
                        c = 0..<outChannels
                    } else {
                        let step = ((outChannels + count - 1) / count + 15) & ~15
                        r = 0..<rows
                        c = min(outChannels, t * step)..<min(outChannels, (t + 1) * step)
                    }
                    guard !r.isEmpty, !c.isEmpty else { return }
                    let product = workspace + r.lowerBound * outChannels + c.lowerBound
                    BLAS.sgemm(m: r.count, n: c.count, k: inChannels,
                               a: UnsafePointer(input.base + r.lowerBound * input.pixelStride), lda: input.pixelStride,
                               b: w + c.lowerBound * inChannels, ldb: inChannels, transposedB: true,
                               c: product, ldc: outChannels)
                    scatter(rows: r, columns: c, from: workspace, to: outputs, bias: b)
                }
            }
        }
    }

    /// Copies columns `columns` of rows `rows` of the product into the
    /// members' outputs, adding bias and applying each member's activation.
    private func scatter(rows: Range<Int>, columns: Range<Int>, from product: UnsafeMutablePointer<Float>,
                         to outputs: [TensorView], bias: UnsafePointer<Float>) {
        for (m, output) in outputs.enumerated() {
            let lo = max(columns.lowerBound, offsets[m]), hi = min(columns.upperBound, offsets[m] + widths[m])
            guard lo < hi else { continue }
            let base = output.base + (lo - offsets[m])
            for r in rows {
                (base + r * output.pixelStride).update(from: product + r * outChannels + lo, count: hi - lo)
            }
            activations[m].apply(rows: rows, cols: hi - lo, base, ld: output.pixelStride, bias: bias + lo)
        }
    }
}
