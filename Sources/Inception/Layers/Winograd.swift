import Foundation

/// Winograd F(2×2, 3×3) for stride-1 3×3 convolutions: each 2×2 block of
/// output comes from a 4×4 block of input with 16 multiplications per
/// channel pair instead of 36, as 16 matrix products (one per position of
/// the transformed 4×4 tile):
///     M_ξ[tiles × out] = V_ξ[tiles × in] · U_ξ[in × out],
/// where U = G·g·Gᵀ is the transformed kernel (made once, at load) and
/// V = Bᵀ·d·B the transformed input tile; the output is Aᵀ·M·A.
package enum Winograd {
    /// Opt-in with `CONVEYOR_WINOGRAD=1`; read once. Measured on this
    /// project's 2-core Xeon, the transforms cost more CPU time than the
    /// multiplications they save, so im2col + sgemm stays the default.
    nonisolated(unsafe) package static var enabled: Bool = ProcessInfo.processInfo.environment["CONVEYOR_WINOGRAD"] == "1"
    // Set before inference starts (start-up or a test's setUp), read while running.

    /// Whether a convolution can use it.
    package static func applies(_ w: Window) -> Bool {
        w.kernelH == 3 && w.kernelW == 3 && w.strideH == 1 && w.strideW == 1
    }

    /// U = G·g·Gᵀ for every (in, out) pair: [16][in][out], from a Keras kernel [3][3][in][out].
    /// G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]].
    package static func transformKernel(_ w: [Float], inChannels cin: Int, outChannels cout: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 16 * cin * cout)
        w.withUnsafeBufferPointer { w in
            u.withUnsafeMutableBufferPointer { u in
                for c in 0..<cin {
                    for o in 0..<cout {
                        @inline(__always) func g(_ ky: Int, _ kx: Int) -> Float { w[((ky * 3 + kx) * cin + c) * cout + o] }
                        // t = G·g, row by row (4 rows × 3 columns)
                        var tt: (Float, Float, Float, Float, Float, Float, Float, Float, Float, Float, Float, Float) =
                            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                        withUnsafeMutableBytes(of: &tt) { raw in
                            let r = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                            for x in 0..<3 {
                                r[x] = g(0, x)
                                r[3 + x] = (g(0, x) + g(1, x) + g(2, x)) / 2
                                r[6 + x] = (g(0, x) - g(1, x) + g(2, x)) / 2
                                r[9 + x] = g(2, x)
                            }
                            for i in 0..<4 {
                                let a = r[i * 3], b = r[i * 3 + 1], d = r[i * 3 + 2]
                                let row = (a, (a + b + d) / 2, (a - b + d) / 2, d)
                                u[((i * 4 + 0) * cin + c) * cout + o] = row.0
                                u[((i * 4 + 1) * cin + c) * cout + o] = row.1
                                u[((i * 4 + 2) * cin + c) * cout + o] = row.2
                                u[((i * 4 + 3) * cin + c) * cout + o] = row.3
                            }
                        }
                    }
                }
            }
        }
        return u
    }

    /// Floats of scratch for `tiles` tiles.
    @inline(__always)
    package static func scratch(tiles: Int, inChannels: Int, outChannels: Int) -> Int {
        16 * tiles * (inChannels + outChannels) + inChannels
    }

    /// Computes the output tiles `tiles` (numbered across the batch, row by
    /// row of 2×2 tiles) into `output`, with bias and activation.
    package static func forward(
        _ input: TensorView, _ output: TensorView, tiles: Range<Int>,
        kernel u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation,
        padTop: Int, padLeft: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let cin = input.shape.channels, cout = output.shape.channels
        let outH = output.shape.height, outW = output.shape.width
        let inH = input.shape.height, inW = input.shape.width
        let tilesW = (outW + 1) / 2, tilesPerImage = ((outH + 1) / 2) * tilesW
        let n = tiles.count
        let v = scratch                      // [16][n][cin]
        let m = scratch + 16 * n * cin       // [16][n][cout]
        let zeros = m + 16 * n * cout        // a zero pixel, read where a tile hangs over the edge
        zeros.update(repeating: 0, count: cin)

        // Input transform V = Bᵀ·d·B, Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]],
        // 16 channels at a time.
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { d in
            let stride = n * cin
            for (j, tile) in tiles.enumerated() {
                let b = tile / tilesPerImage, r = tile % tilesPerImage
                let y0 = (r / tilesW) * 2 - padTop, x0 = (r % tilesW) * 2 - padLeft
                for i in 0..<4 {
                    let y = y0 + i
                    for k in 0..<4 {
                        let x = x0 + k
                        d[i * 4 + k] = y >= 0 && y < inH && x >= 0 && x < inW ? UnsafePointer(input.pixel(b, y, x)) : UnsafePointer(zeros)
                    }
                }
                let dst = v + j * cin
                var c = 0
                while c + 16 <= cin {
                    transformInput(SIMD16<Float>.self, d, c, dst, stride)
                    c += 16
                }
                while c < cin {
                    let lanes = min(4, cin - c)
                    transformInput(SIMD4<Float>.self, d, c, dst, stride, lanes: lanes)
                    c += lanes
                }
            }
        }

        for xi in 0..<16 {
            BLAS.sgemm(m: n, n: cout, k: cin,
                       a: v + xi * n * cin, lda: cin,
                       b: u + xi * cin * cout, ldb: cout,
                       c: m + xi * n * cout, ldc: cout)
        }

        // Output transform Y = Aᵀ·M·A, Aᵀ = [[1,1,1,0],[0,1,−1,−1]], then bias and
        // activation, 16 channels at a time.
        let stride = n * cout
        for (j, tile) in tiles.enumerated() {
            let b = tile / tilesPerImage, r = tile % tilesPerImage
            let oy = (r / tilesW) * 2, ox = (r % tilesW) * 2
            let out = Tile(origin: output.pixel(b, oy, ox), pixelStride: output.pixelStride, rowStride: outW * output.pixelStride,
                           hasRight: ox + 1 < outW, hasBelow: oy + 1 < outH)
            let src = UnsafePointer(m + j * cout)
            var o = 0
            while o + 16 <= cout {
                transformOutput(SIMD16<Float>.self, src, o, stride, bias, activation, out)
                o += 16
            }
            while o < cout {
                let lanes = min(4, cout - o)
                transformOutput(SIMD4<Float>.self, src, o, stride, bias, activation, out, lanes: lanes)
                o += lanes
            }
        }
    }

    /// Where a 2×2 output tile goes.
    private struct Tile {
        var origin: UnsafeMutablePointer<Float>
        var pixelStride: Int
        var rowStride: Int
        var hasRight: Bool
        var hasBelow: Bool
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

    /// V = Bᵀ·d·B for `V.scalarCount` channels starting at `c`.
    @inline(__always)
    private static func transformInput<V: SIMD>(
        _ type: V.Type, _ d: UnsafeMutableBufferPointer<UnsafePointer<Float>>, _ c: Int,
        _ dst: UnsafeMutablePointer<Float>, _ stride: Int, lanes: Int = V.scalarCount
    ) where V.Scalar == Float {
        for k in 0..<4 {
            let d0 = load(V.self, d[k] + c, lanes), d1 = load(V.self, d[4 + k] + c, lanes)
            let d2 = load(V.self, d[8 + k] + c, lanes), d3 = load(V.self, d[12 + k] + c, lanes)
            // column k of Bᵀ·d, kept in the scratch rows of V and finished below
            store(d0 - d2, dst + k * stride + c, lanes)
            store(d1 + d2, dst + (4 + k) * stride + c, lanes)
            store(d2 - d1, dst + (8 + k) * stride + c, lanes)
            store(d1 - d3, dst + (12 + k) * stride + c, lanes)
        }
        for i in 0..<4 {
            let row = dst + i * 4 * stride + c
            let t0 = load(V.self, row, lanes), t1 = load(V.self, row + stride, lanes)
            let t2 = load(V.self, row + 2 * stride, lanes), t3 = load(V.self, row + 3 * stride, lanes)
            store(t0 - t2, row, lanes)
            store(t1 + t2, row + stride, lanes)
            store(t2 - t1, row + 2 * stride, lanes)
            store(t1 - t3, row + 3 * stride, lanes)
        }
    }

    /// Y = Aᵀ·M·A + bias, activated, for `V.scalarCount` channels starting at `o`.
    @inline(__always)
    private static func transformOutput<V: SIMD>(
        _ type: V.Type, _ src: UnsafePointer<Float>, _ o: Int, _ stride: Int,
        _ bias: UnsafePointer<Float>?, _ activation: Activation, _ tile: Tile, lanes: Int = V.scalarCount
    ) where V.Scalar == Float {
        @inline(__always) func m(_ i: Int, _ k: Int) -> V { load(V.self, src + (i * 4 + k) * stride + o, lanes) }
        let s00 = m(0, 0) + m(1, 0) + m(2, 0), s10 = m(1, 0) - m(2, 0) - m(3, 0)
        let s01 = m(0, 1) + m(1, 1) + m(2, 1), s11 = m(1, 1) - m(2, 1) - m(3, 1)
        let s02 = m(0, 2) + m(1, 2) + m(2, 2), s12 = m(1, 2) - m(2, 2) - m(3, 2)
        let s03 = m(0, 3) + m(1, 3) + m(2, 3), s13 = m(1, 3) - m(2, 3) - m(3, 3)
        let add = bias.map { load(V.self, $0 + o, lanes) } ?? V()
        var y00 = s00 + s01 + s02 + add, y01 = s01 - s02 - s03 + add
        var y10 = s10 + s11 + s12 + add, y11 = s11 - s12 - s13 + add
        switch activation {
        case .linear: break
        case .relu:
            y00 = pointwiseMax(y00, V()); y01 = pointwiseMax(y01, V())
            y10 = pointwiseMax(y10, V()); y11 = pointwiseMax(y11, V())
        case .relu6:
            let six = V(repeating: 6)
            y00 = pointwiseMin(pointwiseMax(y00, V()), six); y01 = pointwiseMin(pointwiseMax(y01, V()), six)
            y10 = pointwiseMin(pointwiseMax(y10, V()), six); y11 = pointwiseMin(pointwiseMax(y11, V()), six)
        }
        store(y00, tile.origin + o, lanes)
        if tile.hasRight { store(y01, tile.origin + tile.pixelStride + o, lanes) }
        if tile.hasBelow {
            let below = tile.origin + tile.rowStride
            store(y10, below + o, lanes)
            if tile.hasRight { store(y11, below + tile.pixelStride + o, lanes) }
        }
    }
}
