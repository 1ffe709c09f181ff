import Foundation

/// Winograd F(m, r) along one axis, for stride-1 1×r and r×1 convolutions
/// (InceptionV3's 1×7/7×1 and 1×3/3×1 layers): m outputs along the axis come
/// from α = m + r − 1 inputs with α multiplications per channel pair instead
/// of m·r, as α matrix products
///     M_ξ[tiles × out] = V_ξ[tiles × in] · U_ξ[in × out],  U = G·g,  V = Bᵀ·d,
/// and the output is Aᵀ·M. The matrices come from Toom–Cook on the points
/// 0, ±1, ±2, ±½, … and ∞ (computed once, in double precision): Aᵀ and G
/// evaluate the two polynomials at the points, Bᵀ is the transposed
/// interpolation. The same three-step chunked driver as `Winograd` runs it.
package struct Winograd1D: Sendable {
    /// Outputs per tile, kernel length, inputs per tile.
    package let m: Int, r: Int, alpha: Int
    /// Bᵀ [α][α] and Aᵀ [m][α], row-major, applied at run time.
    private let bt: [Float], at: [Float]
    /// G [α][r], applied to the kernel at load time.
    private let g: [Double]
    /// Points ±p in pairs (ξ, ξ′): when the finite points are symmetric
    /// (even α), Bᵀ's row ξ′ is row ξ with the odd columns negated, and Aᵀ's
    /// column ξ′ is column ξ with the odd rows negated (x ↦ −x), so each pair's
    /// transforms share their work (even and odd parts).
    private let pairs: [(Int, Int)]
    /// Positions that are not in a pair (0 and ∞).
    private let singles: [Int]

    /// The finite interpolation points, in the order they are taken.
    private static let points: [Double] = [0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1.0 / 3, -1.0 / 3]

    package init(outputs m: Int, kernel r: Int) {
        precondition(m >= 1 && r >= 2 && m + r - 2 <= Self.points.count)
        let alpha = m + r - 1
        let p = Array(Self.points.prefix(alpha - 1))
        // Evaluation rows for a polynomial with `n` coefficients: p_j^k, and
        // the leading coefficient for the point at infinity.
        func evaluation(_ n: Int) -> [[Double]] {
            var rows: [[Double]] = []
            for x in p {
                var row: [Double] = []
                for k in 0..<n { row.append(pow(x, Double(k))) }
                rows.append(row)
            }
            var infinity = [Double](repeating: 0, count: n)
            infinity[n - 1] = 1
            rows.append(infinity)
            return rows
        }
        let eh = evaluation(m), eg = evaluation(r)
        // C = V⁻¹ interpolates a degree α−1 product from its values; Bᵀ = Cᵀ.
        let c = Self.inverse(evaluation(alpha))
        var bt = [[Double]](repeating: [Double](repeating: 0, count: alpha), count: alpha)
        for i in 0..<alpha { for j in 0..<alpha { bt[i][j] = c[j][i] } }
        // Scale each row of Bᵀ to a largest entry of 1 and G's row by the same
        // factor (Aᵀ·diag(Gg)·Bᵀ is unchanged), which keeps the run-time values small.
        var gm = eg
        for i in 0..<alpha {
            let s = bt[i].map(abs).max() ?? 1
            bt[i] = bt[i].map { $0 / s }
            gm[i] = gm[i].map { $0 * s }
        }
        self.m = m
        self.r = r
        self.alpha = alpha
        self.bt = bt.flatMap { $0.map(Float.init) }
        self.at = (0..<m).flatMap { i in (0..<alpha).map { j in Float(eh[j][i]) } }
        self.g = gm.flatMap { $0 }
        // Pair the points p and −p (found in the matrices, so any point order works; the
        // tolerance covers the inverse's rounding for large α, far below Float's precision).
        // b is a with its odd entries negated.
        func mirrored(_ a: [Double], _ b: [Double]) -> Bool {
            zip(a, b).enumerated().allSatisfy { j, pair in
                let flipped = j % 2 == 0 ? pair.0 : -pair.0
                return abs(pair.1 - flipped) <= 1e-7 * max(1, abs(flipped))
            }
        }
        var pairs: [(Int, Int)] = [], paired = Set<Int>()
        for i in 0..<alpha where !paired.contains(i) {
            let mirror = (i + 1..<alpha).first { i2 in
                !paired.contains(i2) && mirrored(bt[i], bt[i2]) && mirrored(eh[i], eh[i2])
                    && bt[i].enumerated().contains { $0.offset % 2 == 1 && $0.element != 0 }
            }
            if let i2 = mirror {
                pairs.append((i, i2))
                paired.formUnion([i, i2])
            }
        }
        self.pairs = pairs
        self.singles = (0..<alpha).filter { !paired.contains($0) }
    }

    /// Positions whose transforms share work with their mirror point (tests
    /// check that with an even α every point but 0 and ∞ is paired).
    package var pairedPositions: Int { 2 * pairs.count }

    /// Gauss–Jordan inverse with partial pivoting (α ≤ 12).
    private static func inverse(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var m = a, inv = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
            m.swapAt(col, pivot)
            inv.swapAt(col, pivot)
            let d = m[col][col]
            for k in 0..<n { m[col][k] /= d; inv[col][k] /= d }
            for row in 0..<n where row != col {
                let f = m[row][col]
                if f == 0 { continue }
                for k in 0..<n { m[row][k] -= f * m[col][k]; inv[row][k] -= f * inv[col][k] }
            }
        }
        return inv
    }

    /// U = G·g for every (in, out) pair: [α][out][in], from a Keras kernel
    /// [r][in][out] (a 1×r or r×1 kernel, whose taps are consecutive).
    package func transformKernel(_ w: [Float], inChannels cin: Int, outChannels cout: Int) -> [Float] {
        var u = [Float](repeating: 0, count: alpha * cin * cout)
        for xi in 0..<alpha {
            for o in 0..<cout {
                for c in 0..<cin {
                    var s = 0.0
                    for k in 0..<r { s += g[xi * r + k] * Double(w[(k * cin + c) * cout + o]) }
                    u[(xi * cout + o) * cin + c] = Float(s)
                }
            }
        }
        return u
    }

    /// Tiles per batch for an output shape.
    package func tiles(_ out: Shape, batch: Int, alongWidth: Bool) -> Int {
        alongWidth ? batch * out.height * ((out.width + m - 1) / m) : batch * ((out.height + m - 1) / m) * out.width
    }

    /// Tiles transformed and multiplied at once.
    package func chunk(tiles: Int, inChannels: Int, outChannels: Int) -> Int {
        Winograd.chunk(tiles: tiles, inChannels: inChannels, outChannels: outChannels, positions: alpha)
    }

    /// Floats of workspace for a chunk of `tiles` tiles.
    package func scratch(tiles: Int, inChannels: Int, outChannels: Int) -> Int {
        Winograd.scratch(tiles: tiles, inChannels: inChannels, outChannels: outChannels, positions: alpha)
    }

    /// The whole convolution along one axis: `output` = conv(`input`) + bias, activated.
    package func forward(
        _ input: TensorView, _ output: TensorView, batch: Int, alongWidth: Bool,
        kernel u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
        padBefore: Int, workspace: UnsafeMutablePointer<Float>
    ) {
        let cin = input.shape.channels, cout = output.shape.channels
        let total = tiles(output.shape, batch: batch, alongWidth: alongWidth)
        let layout = Layout(input: input, output: output, alongWidth: alongWidth, m: m, padBefore: padBefore)
        bt.withUnsafeBufferPointer { bt in
            at.withUnsafeBufferPointer { at in
                let bt = bt.baseAddress!, at = at.baseAddress!
                Winograd.runInChunks(
                    tiles: total, positions: alpha, inChannels: cin, outChannels: cout, minChunk: 8,
                    kernel: u, workspace: workspace,
                    transformInput: { range, dst, stride, zeros in
                        for (j, tile) in range.enumerated() {
                            transformInput(layout, tile: tile, into: dst + j * cin, stride: stride, zeros: zeros, bt: bt)
                        }
                    },
                    transformOutput: { range, src, stride in
                        for (j, tile) in range.enumerated() {
                            transformOutput(layout, tile: tile, from: src + j * cout, stride: stride,
                                            at: at, bias: bias, activation: activation)
                        }
                    })
            }
        }
    }

    /// Where a tile's pixels are.
    private struct Layout {
        var input: TensorView
        var output: TensorView
        var alongWidth: Bool
        var m: Int
        var padBefore: Int

        /// Image, row and column of a tile's first output pixel.
        @inline(__always)
        func origin(_ tile: Int) -> (image: Int, y: Int, x: Int) {
            let h = output.shape.height, w = output.shape.width
            if alongWidth {
                let perRow = (w + m - 1) / m
                let line = tile / perRow
                return (line / h, line % h, (tile % perRow) * m)
            }
            let perImage = ((h + m - 1) / m) * w
            let r = tile % perImage
            return (tile / perImage, (r / w) * m, r % w)
        }
    }

    private func transformInput(
        _ layout: Layout, tile: Int, into dst: UnsafeMutablePointer<Float>, stride: Int,
        zeros: UnsafePointer<Float>, bt: UnsafePointer<Float>
    ) {
        let input = layout.input
        let (b, oy, ox) = layout.origin(tile)
        let cin = input.shape.channels
        let length = layout.alongWidth ? input.shape.width : input.shape.height
        let start = (layout.alongWidth ? ox : oy) - layout.padBefore
        let step = layout.alongWidth ? input.pixelStride : input.shape.width * input.pixelStride
        // Input pixels along the axis; zeros where the tile hangs over the edge.
        let base = layout.alongWidth ? input.pixel(b, oy, 0) : input.pixel(b, 0, ox)
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: alpha) { pixels in
            for j in 0..<alpha {
                let p = start + j
                pixels[j] = p >= 0 && p < length ? UnsafePointer(base + p * step) : zeros
            }
            // V_i = Σ_j Bᵀ[i][j]·x_j over whole channel rows (loops the compiler vectorises).
            @inline(__always) func sum(row i: Int, columns: StrideTo<Int>, into out: UnsafeMutablePointer<Float>) {
                let row = bt + i * alpha
                var first = true
                for j in columns where row[j] != 0 {
                    Self.axpy(row[j], pixels[j], out, count: cin, accumulate: !first)
                    first = false
                }
                if first { out.update(repeating: 0, count: cin) }
            }
            for i in singles { sum(row: i, columns: Swift.stride(from: 0, to: alpha, by: 1), into: dst + i * stride) }
            // A pair: the even part E into V_p, the odd part O into V_−p, then V_p = E + O, V_−p = E − O.
            for (i, i2) in pairs {
                let even = dst + i * stride, odd = dst + i2 * stride
                sum(row: i, columns: Swift.stride(from: 0, to: alpha, by: 2), into: even)
                sum(row: i, columns: Swift.stride(from: 1, to: alpha, by: 2), into: odd)
                Self.sumAndDifference(even, odd, count: cin)
            }
        }
    }

    /// (a, b) ← (a + b, a − b) over `count` floats.
    @inline(__always)
    private static func sumAndDifference(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, count: Int) {
        for k in 0..<count {
            let x = a[k], y = b[k]
            a[k] = x + y
            b[k] = x - y
        }
    }

    /// y = a·x (or y += a·x) over `count` floats.
    @inline(__always)
    private static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, accumulate: Bool) {
        if accumulate {
            for k in 0..<count { y[k] += a * x[k] }
        } else {
            for k in 0..<count { y[k] = a * x[k] }
        }
    }

    private func transformOutput(
        _ layout: Layout, tile: Int, from src: UnsafeMutablePointer<Float>, stride: Int, at: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, activation: Activation
    ) {
        let output = layout.output
        let (b, oy, ox) = layout.origin(tile)
        let cout = output.shape.channels
        let step = layout.alongWidth ? output.pixelStride : output.shape.width * output.pixelStride
        let valid = min(m, layout.alongWidth ? output.shape.width - ox : output.shape.height - oy)
        let origin = output.pixel(b, oy, ox)
        // A pair's products become M_p + M_−p and M_p − M_−p (this tile's rows of M are its own):
        // Aᵀ[k][−p] = (−1)^k·Aᵀ[k][p], so even outputs take the sum and odd outputs the difference.
        for (xi, xi2) in pairs { Self.sumAndDifference(src + xi * stride, src + xi2 * stride, count: cout) }
        // Y_k = Σ_ξ Aᵀ[k][ξ]·M_ξ over whole channel rows.
        for k in 0..<valid {
            let row = at + k * alpha
            let out = origin + k * step
            var first = true
            @inline(__always) func add(_ a: Float, _ x: UnsafePointer<Float>) {
                guard a != 0 else { return }
                Self.axpy(a, x, out, count: cout, accumulate: !first)
                first = false
            }
            for xi in singles { add(row[xi], src + xi * stride) }
            for (xi, xi2) in pairs { add(row[xi], src + (k % 2 == 0 ? xi : xi2) * stride) }
            if first { out.update(repeating: 0, count: cout) }
        }
        for k in 0..<valid {
            activation.apply(rows: 0..<1, cols: cout, origin + k * step, ld: 0, bias: bias)
        }
    }
}
