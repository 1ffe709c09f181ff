import Foundation

/// Winograd F(4×4, 3×3) for stride-1 3×3 convolutions: each 4×4 block of
/// output comes from a 6×6 block of input with 36 multiplications per channel
/// pair instead of 144, as 36 matrix products (one per position ξ of the
/// transformed 6×6 tile); and F(2×2, 5×5) for stride-1 5×5 convolutions
/// (36 instead of 100), which shares the 6×6 input transform:
///     M_ξ[tiles × out] = V_ξ[tiles × in] · U_ξ[in × out],
/// where U = G·g·Gᵀ is the transformed kernel (made once, at load) and
/// V = Bᵀ·d·B the transformed input tile; the output is Aᵀ·M·A (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016, points 0, ±1, ±2).
///
/// A layer runs in chunks of tiles, each in three parallel steps: transform
/// the chunk's input tiles, multiply (the 36 products shared among the
/// threads), transform back into the output with bias and activation.
package enum Winograd {
    /// On unless `CONVEYOR_WINOGRAD=0`; read once.
    nonisolated(unsafe) package static var enabled: Bool = ProcessInfo.processInfo.environment["CONVEYOR_WINOGRAD"] != "0"
    // Set before inference starts (start-up or a test's setUp), read while running.

    /// Input pixels per tile side.
    package static let alpha = 6
    /// Transformed positions per tile.
    package static let positions = alpha * alpha

    /// Fewest tiles in a layer (across the batch) for the transforms and the
    /// 36 smaller products to beat one im2col product. Below it the products
    /// are too thin and their weights (4× the kernel's size) dominate.
    nonisolated(unsafe) package static var minimumTiles = 48

    /// Fewest tiles per image for a layer to get Winograd kernels at all.
    nonisolated(unsafe) package static var minimumTilesPerImage = 24

    /// Outputs per tile of the one-axis Winograd for kernels of 7 or more
    /// taps: F(4, 7) (points 0, ±1, ±2, ±½, ±3, ∞) cuts the products 2.8×;
    /// InceptionV3's outputs stay within 1.5e-5 of TensorFlow's probabilities.
    package static let outputsForLongKernels = 4

    /// Largest chunk workspace, in floats (24 MiB).
    nonisolated(unsafe) package static var chunkBudget = 6 << 20

    /// Output pixels per tile side for a convolution that can use it: 4 for
    /// stride-1 3×3, 2 for stride-1 5×5, else nil.
    package static func outputTile(for w: Window) -> Int? {
        guard w.strideH == 1, w.strideW == 1, w.kernelH == w.kernelW else { return nil }
        switch w.kernelH {
        case 3: return 4
        case 5: return 2
        default: return nil
        }
    }

    /// Whether a convolution can use it.
    package static func applies(_ w: Window) -> Bool { outputTile(for: w) != nil }

    /// Tiles per image for an output shape and output tile size.
    @inline(__always)
    package static func tiles(_ out: Shape, tile m: Int = 4) -> (rows: Int, columns: Int) {
        ((out.height + m - 1) / m, (out.width + m - 1) / m)
    }

    /// Tiles transformed and multiplied at once, for tiles of `positions`
    /// transformed values (36 here; α for `Winograd1D`).
    package static func chunk(tiles: Int, inChannels: Int, outChannels: Int, positions: Int = positions) -> Int {
        max(1, min(tiles, (chunkBudget - inChannels) / (positions * (inChannels + outChannels))))
    }

    /// Floats of workspace for a chunk of `tiles` tiles: V, M and a zero pixel.
    @inline(__always)
    package static func scratch(tiles: Int, inChannels: Int, outChannels: Int, positions: Int = positions) -> Int {
        positions * tiles * (inChannels + outChannels) + inChannels
    }

    /// G (6×r): row j evaluates the kernel polynomial at point j (0, 1, −1,
    /// 2, −2; the last row is the point at infinity), divided by the scale
    /// [4, −6, −6, 24, 24, 1] that makes Bᵀ Lavin's integer matrix. For r = 3
    /// this is Lavin's G.
    package static func kernelMatrix(r: Int) -> [[Double]] {
        let points: [Double] = [0, 1, -1, 2, -2], scale: [Double] = [4, -6, -6, 24, 24]
        var g = (0..<5).map { j in (0..<r).map { k in pow(points[j], Double(k)) / scale[j] } }
        g.append((0..<r).map { $0 == r - 1 ? 1 : 0 })
        return g
    }

    /// U = G·g·Gᵀ for every (in, out) pair: [36][out][in], from a Keras kernel
    /// [r][r][in][out] (r = 3 or 5), computed in double precision.
    package static func transformKernel(_ w: [Float], inChannels cin: Int, outChannels cout: Int, kernel r: Int = 3) -> [Float] {
        let g = kernelMatrix(r: r)
        var u = [Float](repeating: 0, count: positions * cin * cout)
        u.withUnsafeMutableBufferPointer { u in
            w.withUnsafeBufferPointer { w in
                var t = [Double](repeating: 0, count: alpha * r)
                for c in 0..<cin {
                    for o in 0..<cout {
                        // t = G·k (6×r), then U = t·Gᵀ (6×6)
                        for i in 0..<alpha {
                            for x in 0..<r {
                                var s = 0.0
                                for y in 0..<r { s += g[i][y] * Double(w[((y * r + x) * cin + c) * cout + o]) }
                                t[i * r + x] = s
                            }
                        }
                        for i in 0..<alpha {
                            for j in 0..<alpha {
                                var s = 0.0
                                for x in 0..<r { s += g[j][x] * t[i * r + x] }
                                u[((i * alpha + j) * cout + o) * cin + c] = Float(s)
                            }
                        }
                    }
                }
            }
        }
        return u
    }

    /// The whole convolution: `output` = conv(`input`) + bias, activated.
    package static func forward(
        _ input: TensorView, _ output: TensorView, batch: Int,
        kernel u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
        padTop: Int, padLeft: Int, tile m: Int = 4, workspace: UnsafeMutablePointer<Float>
    ) {
        let cin = input.shape.channels, cout = output.shape.channels
        let grid = tiles(output.shape, tile: m)
        let total = batch * grid.rows * grid.columns
        let layout = Layout(input: input, output: output, columns: grid.columns, perImage: grid.rows * grid.columns,
                            padTop: padTop, padLeft: padLeft, tileSize: m)
        runInChunks(tiles: total, positions: positions, inChannels: cin, outChannels: cout, minChunk: 4,
                    kernel: u, workspace: workspace,
                    transformInput: { range, dst, stride, zeros in
                        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: positions) { pixels in
                            withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: positions) { t in
                                for (j, tile) in range.enumerated() {
                                    transformInput(layout, tile: tile, into: dst + j * cin, stride: stride, zeros: zeros,
                                                   pixels: pixels, t: t.baseAddress!)
                                }
                            }
                        }
                    },
                    transformOutput: { range, src, stride in
                        for (j, tile) in range.enumerated() {
                            transformOutput(layout, tile: tile, from: src + j * cout, stride: stride, bias: bias, activation: activation)
                        }
                    })
    }

    /// The three steps both Winograd forms run, chunk by chunk (at most
    /// `chunk(…)` tiles, so the workspace stays bounded): transform the
    /// chunk's input tiles into V [positions][n][in] (the threads share the
    /// tiles), multiply (`multiply`), transform M [positions][n][out] back
    /// into the output (the threads share the tiles again).
    /// `transformInput(tiles, dst, stride, zeros)` writes tile `tiles.lowerBound + j`'s
    /// values to `dst + j·in + ξ·stride`, reading `zeros` where a tile hangs over
    /// the edge; `transformOutput(tiles, src, stride)` reads them back from
    /// `src + j·out + ξ·stride` (and may overwrite them: each tile's rows are its own).
    package static func runInChunks(
        tiles total: Int, positions: Int, inChannels cin: Int, outChannels cout: Int, minChunk: Int,
        kernel u: UnsafePointer<Float>, workspace: UnsafeMutablePointer<Float>,
        transformInput: (Range<Int>, UnsafeMutablePointer<Float>, Int, UnsafePointer<Float>) -> Void,
        transformOutput: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        let size = chunk(tiles: total, inChannels: cin, outChannels: cout, positions: positions)
        var start = 0
        while start < total {
            let n = min(size, total - start)
            let v = workspace                        // [positions][n][cin]
            let m = workspace + positions * n * cin  // [positions][n][cout]
            let zeros = m + positions * n * cout     // a zero pixel
            zeros.update(repeating: 0, count: cin)
            let first = start
            Parallel.forEachChunk(n, minChunk: minChunk) { range in
                transformInput((first + range.lowerBound)..<(first + range.upperBound), v + range.lowerBound * cin,
                               n * cin, zeros)
            }
            multiply(positions: positions, tiles: n, inChannels: cin, outChannels: cout, v: v, u: u, into: m)
            Parallel.forEachChunk(n, minChunk: minChunk) { range in
                transformOutput((first + range.lowerBound)..<(first + range.upperBound), m + range.lowerBound * cout,
                                n * cout)
            }
            start += n
        }
    }

    /// The products of a chunk, shared among the threads:
    /// M_ξ[tiles × out] = V_ξ[tiles × in] · U_ξ[in × out] for ξ in 0..<positions,
    /// with V [positions][tiles][in], U [positions][out][in] and M [positions][tiles][out].
    private static func multiply(
        positions: Int, tiles n: Int, inChannels cin: Int, outChannels cout: Int,
        v: UnsafePointer<Float>, u: UnsafePointer<Float>, into m: UnsafeMutablePointer<Float>
    ) {
        Parallel.forEachThread(min(Parallel.threads, positions)) { t, count in
            var xi = t
            while xi < positions {
                BLAS.sgemm(m: n, n: cout, k: cin, a: v + xi * n * cin, lda: cin,
                           b: u + xi * cin * cout, ldb: cin, transposedB: true, c: m + xi * n * cout, ldc: cout)
                xi += count
            }
        }
    }

    /// Where tiles come from and go to.
    private struct Layout {
        var input: TensorView
        var output: TensorView
        var columns: Int
        var perImage: Int
        var padTop: Int
        var padLeft: Int
        var tileSize: Int

        /// Image, first output row and column of a tile.
        @inline(__always)
        func origin(_ tile: Int) -> (image: Int, y: Int, x: Int) {
            let r = tile % perImage
            return (tile / perImage, (r / columns) * tileSize, (r % columns) * tileSize)
        }
    }

    /// V = Bᵀ·d·B for one tile, all channels; V_ξ's row for this tile is at
    /// `dst + ξ·stride`.
    private static func transformInput(
        _ layout: Layout, tile: Int, into dst: UnsafeMutablePointer<Float>, stride: Int, zeros: UnsafePointer<Float>,
        pixels d: UnsafeMutableBufferPointer<UnsafePointer<Float>>, t: UnsafeMutablePointer<SIMD4<Float>>
    ) {
        let input = layout.input
        let (b, oy, ox) = layout.origin(tile)
        let y0 = oy - layout.padTop, x0 = ox - layout.padLeft
        let inH = input.shape.height, inW = input.shape.width
        for i in 0..<alpha {
            let y = y0 + i
            for k in 0..<alpha {
                let x = x0 + k
                d[i * alpha + k] = y >= 0 && y < inH && x >= 0 && x < inW ? UnsafePointer(input.pixel(b, y, x)) : zeros
            }
        }
        let cin = input.shape.channels
        var c = 0
        // Four channels at a time (six SIMD4 values fit the SSE registers), then the last few.
        while c + 4 <= cin {
            inputTile(SIMD4<Float>.self, d, c, dst, stride, t, lanes: 4)
            c += 4
        }
        if c < cin { inputTile(SIMD4<Float>.self, d, c, dst, stride, t, lanes: cin - c) }
    }

    /// Bᵀ·x for one column of six values.
    @inline(__always)
    private static func bt<V: SIMD>(_ d0: V, _ d1: V, _ d2: V, _ d3: V, _ d4: V, _ d5: V) -> (V, V, V, V, V, V)
    where V.Scalar == Float {
        let four = V(repeating: 4), five = V(repeating: 5), two = V(repeating: 2)
        let a = d4 - four * d2, b = d3 - four * d1   // rows 1, 2: a ± b
        let c = d4 - d2, e = two * (d3 - d1)         // rows 3, 4: c ± e
        return (four * d0 - five * d2 + d4, a + b, a - b, c + e, c - e, four * d1 - five * d3 + d5)
    }

    @inline(__always)
    private static func inputTile<V: SIMD>(
        _: V.Type, _ d: UnsafeMutableBufferPointer<UnsafePointer<Float>>, _ c: Int,
        _ dst: UnsafeMutablePointer<Float>, _ stride: Int, _ t: UnsafeMutablePointer<V>, lanes: Int
    ) where V.Scalar == Float {
        // Columns: t[i][k] = (Bᵀ·d)[i][k]
        for k in 0..<alpha {
            let r = bt(load(V.self, d[k] + c, lanes), load(V.self, d[alpha + k] + c, lanes),
                       load(V.self, d[2 * alpha + k] + c, lanes), load(V.self, d[3 * alpha + k] + c, lanes),
                       load(V.self, d[4 * alpha + k] + c, lanes), load(V.self, d[5 * alpha + k] + c, lanes))
            t[k] = r.0; t[alpha + k] = r.1; t[2 * alpha + k] = r.2
            t[3 * alpha + k] = r.3; t[4 * alpha + k] = r.4; t[5 * alpha + k] = r.5
        }
        // Rows: V[i][j] = (t·B)[i][j]
        for i in 0..<alpha {
            let row = t + i * alpha
            let r = bt(row[0], row[1], row[2], row[3], row[4], row[5])
            let out = dst + i * alpha * stride + c
            store(r.0, out, lanes); store(r.1, out + stride, lanes); store(r.2, out + 2 * stride, lanes)
            store(r.3, out + 3 * stride, lanes); store(r.4, out + 4 * stride, lanes); store(r.5, out + 5 * stride, lanes)
        }
    }

    /// Y = Aᵀ·M·A for one tile, plus bias and activation, written to the
    /// output pixels the tile covers.
    private static func transformOutput(
        _ layout: Layout, tile: Int, from src: UnsafePointer<Float>, stride: Int,
        bias: UnsafePointer<Float>?, activation: Activation
    ) {
        let output = layout.output
        let (b, oy, ox) = layout.origin(tile)
        let target = Target(origin: output.pixel(b, oy, ox), pixelStride: output.pixelStride,
                            rowStride: output.shape.width * output.pixelStride,
                            rows: min(layout.tileSize, output.shape.height - oy),
                            columns: min(layout.tileSize, output.shape.width - ox), size: layout.tileSize)
        let cout = output.shape.channels
        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: 4 * alpha) { scratch in
            let t4 = scratch.baseAddress!
            var o = 0
            while o + 4 <= cout {
                outputTile(src, o, stride, target, t4, bias: bias, activation: activation, lanes: 4)
                o += 4
            }
            if o < cout { outputTile(src, o, stride, target, t4, bias: bias, activation: activation, lanes: cout - o) }
        }
    }

    /// Where an output tile goes (fewer rows or columns at the edges).
    private struct Target {
        var origin: UnsafeMutablePointer<Float>
        var pixelStride: Int
        var rowStride: Int
        var rows: Int
        var columns: Int
        /// 4 (F(4×4, 3×3)) or 2 (F(2×2, 5×5)).
        var size: Int
    }

    /// Aᵀ·x for one column of six values: four outputs, or two (then the
    /// last two are unused). Aᵀ for two outputs is [1 1 1 1 1 0; 0 1 −1 2 −2 1].
    @inline(__always)
    private static func at<V: SIMD>(_ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V, size: Int) -> (V, V, V, V)
    where V.Scalar == Float {
        let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
        let two = V(repeating: 2), four = V(repeating: 4), eight = V(repeating: 8)
        if size == 2 { return (m0 + a + c, b + two * d + m5, V(), V()) }
        return (m0 + a + c, b + two * d, a + four * c, b + eight * d + m5)
    }

    @inline(__always)
    private static func outputTile(
        _ src: UnsafePointer<Float>, _ o: Int, _ stride: Int, _ target: Target,
        _ t: UnsafeMutablePointer<SIMD4<Float>>, bias: UnsafePointer<Float>?, activation: Activation, lanes: Int
    ) {
        typealias V = SIMD4<Float>
        @inline(__always) func m(_ xi: Int) -> V { load(V.self, src + xi * stride + o, lanes) }
        // Bias and activation as the values are stored (no second pass over the tile).
        let b = bias.map { load(V.self, $0 + o, lanes) } ?? V()
        @inline(__always) func store(_ value: V, _ p: UnsafeMutablePointer<Float>) {
            Winograd.store(activation.apply(value + b), p, lanes)
        }
        // Columns: t[i][k] = (Aᵀ·M)[i][k]
        for k in 0..<alpha {
            let r = at(m(k), m(alpha + k), m(2 * alpha + k), m(3 * alpha + k), m(4 * alpha + k), m(5 * alpha + k),
                       size: target.size)
            t[k] = r.0; t[alpha + k] = r.1; t[2 * alpha + k] = r.2; t[3 * alpha + k] = r.3
        }
        for i in 0..<target.rows {
            let row = t + i * alpha
            let r = at(row[0], row[1], row[2], row[3], row[4], row[5], size: target.size)
            let out = target.origin + i * target.rowStride + o
            store(r.0, out)
            if target.columns > 1 { store(r.1, out + target.pixelStride) }
            if target.columns > 2 { store(r.2, out + 2 * target.pixelStride) }
            if target.columns > 3 { store(r.3, out + 3 * target.pixelStride) }
        }
    }

    /// Loads `lanes` floats (all of V's lanes unless fewer are left; the rest are zero).
    @inline(__always)
    private static func load<V: SIMD>(_: V.Type, _ p: UnsafePointer<Float>, _ lanes: Int) -> V where V.Scalar == Float {
        if lanes == V.scalarCount { return UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        var v = V()
        for i in 0..<lanes { v[i] = p[i] }
        return v
    }

    /// Stores the first `lanes` lanes.
    @inline(__always)
    private static func store<V: SIMD>(_ value: V, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) where V.Scalar == Float {
        if lanes == V.scalarCount {
            UnsafeMutableRawPointer(p).storeBytes(of: value, as: V.self)
            return
        }
        for i in 0..<lanes { p[i] = value[i] }
    }
}
