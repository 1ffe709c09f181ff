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
    /// project's 2-core Zen 5 machine, these transforms (scalar, channel by
    /// channel) cost more than the multiplications they save, so im2col +
    /// sgemm stays the default until they are vectorised.
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

        // Input transform V = Bᵀ·d·B, Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 16) { d in
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
            do {
                let p = d
                let dst = v + j * cin
                let stride = n * cin
                for c in 0..<cin {
                    // rows: t_i = Bᵀ row i applied to d (over rows), per column k
                    var t = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                             Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
                    withUnsafeMutableBytes(of: &t) { raw in
                        let tt = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                        for k in 0..<4 {
                            let d0 = p[k][c], d1 = p[4 + k][c], d2 = p[8 + k][c], d3 = p[12 + k][c]
                            tt[k] = d0 - d2
                            tt[4 + k] = d1 + d2
                            tt[8 + k] = d2 - d1
                            tt[12 + k] = d1 - d3
                        }
                        for i in 0..<4 {
                            let a0 = tt[i * 4], a1 = tt[i * 4 + 1], a2 = tt[i * 4 + 2], a3 = tt[i * 4 + 3]
                            dst[(i * 4) * stride + c] = a0 - a2
                            dst[(i * 4 + 1) * stride + c] = a1 + a2
                            dst[(i * 4 + 2) * stride + c] = a2 - a1
                            dst[(i * 4 + 3) * stride + c] = a1 - a3
                        }
                    }
                }
            }
        }
        }

        for xi in 0..<16 {
            BLAS.sgemm(m: n, n: cout, k: cin,
                       a: v + xi * n * cin, lda: cin,
                       b: u + xi * cin * cout, ldb: cout,
                       c: m + xi * n * cout, ldc: cout)
        }

        // Output transform Y = Aᵀ·M·A, Aᵀ = [[1,1,1,0],[0,1,−1,−1]], then bias and activation.
        let stride = n * cout
        for (j, tile) in tiles.enumerated() {
            let b = tile / tilesPerImage, r = tile % tilesPerImage
            let oy = (r / tilesW) * 2, ox = (r % tilesW) * 2
            let src = m + j * cout
            let p00 = output.pixel(b, oy, ox)
            let hasRight = ox + 1 < outW, hasBelow = oy + 1 < outH
            for o in 0..<cout {
                var s = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
                // s (2×4) = Aᵀ·M
                for k in 0..<4 {
                    let m0 = src[k * stride + o], m1 = src[(4 + k) * stride + o]
                    let m2 = src[(8 + k) * stride + o], m3 = src[(12 + k) * stride + o]
                    let top = m0 + m1 + m2, bottom = m1 - m2 - m3
                    switch k {
                    case 0: s.0 = top; s.4 = bottom
                    case 1: s.1 = top; s.5 = bottom
                    case 2: s.2 = top; s.6 = bottom
                    default: s.3 = top; s.7 = bottom
                    }
                }
                let add = bias?[o] ?? 0
                var y00 = s.0 + s.1 + s.2 + add, y01 = s.1 - s.2 - s.3 + add
                var y10 = s.4 + s.5 + s.6 + add, y11 = s.5 - s.6 - s.7 + add
                switch activation {
                case .linear: break
                case .relu: y00 = max(y00, 0); y01 = max(y01, 0); y10 = max(y10, 0); y11 = max(y11, 0)
                case .relu6:
                    y00 = min(max(y00, 0), 6); y01 = min(max(y01, 0), 6)
                    y10 = min(max(y10, 0), 6); y11 = min(max(y11, 0), 6)
                }
                p00[o] = y00
                if hasRight { p00[output.pixelStride + o] = y01 }
                if hasBelow {
                    let below = p00 + outW * output.pixelStride
                    below[o] = y10
                    if hasRight { below[output.pixelStride + o] = y11 }
                }
            }
        }
    }
}
