// Bilinear resizing exactly like TensorFlow 2's
// `tf.image.resize(x, [height, width], method: "bilinear", antialias: false)`
// (the `ResizeBilinear` kernel with `half_pixel_centers = true`,
// `tensorflow/core/kernels/image/resize_bilinear_op.cc`).
//
// For each output coordinate `d` along an axis of input size `n` and output size `m`,
// all in Float32 as TensorFlow computes it:
// ```
// scale = Float(n) / Float(m)
// s     = (Float(d) + 0.5) * scale - 0.5
// low   = max(Int(floor(s)), 0);  high = min(Int(ceil(s)), n - 1);  lerp = s - floor(s)
// ```
// and each output value is
// ```
// top    = tl + (tr - tl) * xlerp
// bottom = bl + (br - bl) * xlerp
// value  = top + (bottom - top) * ylerp
// ```
// with separate roundings (no fused multiply-add), as in TensorFlow's SSE and scalar paths.
// The clamped edges make `low == high` there, so the weight does not matter.
// The aspect ratio is not kept and nothing is cropped.

/// Resizes `image` to `width`×`height` and returns the result as HWC Float32 values on
/// the source's 0…255 scale, with the same number of channels as `image`.
public func resizeBilinear(_ image: DecodedImage, toWidth width: Int, height: Int) -> [Float] {
    let count = width * height * image.channels
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        resizeBilinear(image, toWidth: width, height: height, into: buffer.baseAddress!)
        initialized = count
    }
}

/// Resizes `image` to `width`×`height`, writing `width * height * image.channels` HWC
/// Float32 values to `destination`, each passed through `y = x * scale + offset`.
///
/// - Parameters:
///   - inputDivisor: every source sample `u` is first converted to `Float(u) / inputDivisor`
///     (correctly rounded, like `tf.cast(x, tf.float32) / inputDivisor`), and the
///     interpolation runs on those values. Use 255 to resize on the 0…1 scale as
///     InceptionV3's preprocessing does; 1 (the default) resizes the raw 0…255 values.
///   - scale, offset: the affine map applied to each interpolated value, rounded as two
///     Float32 operations (`x * scale`, then `+ offset`). Lets callers fuse the model's
///     input scaling, for example `scale: 2, offset: -1` for InceptionV3.
public func resizeBilinear(
    _ image: DecodedImage,
    toWidth width: Int,
    height: Int,
    into destination: UnsafeMutablePointer<Float>,
    inputDivisor: Float = 1,
    scale: Float = 1,
    offset: Float = 0
) {
    precondition(width > 0 && height > 0, "resizeBilinear: output size must be positive, got \(width)×\(height)")
    var table = [Float](repeating: 0, count: 256)
    for i in 0..<256 { table[i] = Float(i) / inputDivisor }
    let xs = BilinearAxis(outSize: width, inSize: image.width, stride: image.channels)
    let ys = BilinearAxis(outSize: height, inSize: image.height, stride: image.width * image.channels)
    image.pixels.withUnsafeBufferPointer { src in
        table.withUnsafeBufferPointer { lut in
            BilinearKernel(
                source: src.baseAddress!, channels: image.channels, lut: lut.baseAddress!,
                scale: scale, offset: offset
            ).run(xs: xs, ys: ys, into: destination)
        }
    }
}

/// Precomputed source offsets and weights along one axis (TensorFlow's
/// `CachedInterpolation`), with offsets already multiplied by the axis stride.
struct BilinearAxis {
    var lower: [Int]
    var upper: [Int]
    var lerp: [Float]

    init(outSize: Int, inSize: Int, stride: Int) {
        let scale = Float(inSize) / Float(outSize)
        lower = [Int](repeating: 0, count: outSize)
        upper = [Int](repeating: 0, count: outSize)
        lerp = [Float](repeating: 0, count: outSize)
        for i in 0..<outSize {
            let s = (Float(i) + 0.5) * scale - 0.5
            let sFloor = s.rounded(.down)
            lower[i] = max(Int(sFloor), 0) * stride
            upper[i] = min(Int(s.rounded(.up)), inSize - 1) * stride
            lerp[i] = s - sFloor
        }
    }
}

/// The inner loops of the bilinear resize, specialised for 3 and 1 channels.
struct BilinearKernel {
    let source: UnsafePointer<UInt8>
    let channels: Int
    let lut: UnsafePointer<Float>
    let scale: Float
    let offset: Float

    @inline(__always)
    private func value(_ top: UnsafePointer<UInt8>, _ bottom: UnsafePointer<UInt8>,
                       _ l: Int, _ u: Int, _ xLerp: Float, _ yLerp: Float) -> Float {
        let topLeft = lut[Int(top[l])], topRight = lut[Int(top[u])]
        let bottomLeft = lut[Int(bottom[l])], bottomRight = lut[Int(bottom[u])]
        let t = topLeft + (topRight - topLeft) * xLerp
        let b = bottomLeft + (bottomRight - bottomLeft) * xLerp
        let v = t + (b - t) * yLerp
        return v * scale + offset
    }

    func run(xs: BilinearAxis, ys: BilinearAxis, into destination: UnsafeMutablePointer<Float>) {
        let outWidth = xs.lower.count
        let rowLength = outWidth * channels
        xs.lower.withUnsafeBufferPointer { xl in
        xs.upper.withUnsafeBufferPointer { xu in
        xs.lerp.withUnsafeBufferPointer { xw in
            for y in 0..<ys.lower.count {
                let top = source + ys.lower[y]
                let bottom = source + ys.upper[y]
                let yLerp = ys.lerp[y]
                var out = destination + y * rowLength
                switch channels {
                case 3:
                    for x in 0..<outWidth {
                        let l = xl[x], u = xu[x], w = xw[x]
                        out[0] = value(top, bottom, l, u, w, yLerp)
                        out[1] = value(top, bottom, l + 1, u + 1, w, yLerp)
                        out[2] = value(top, bottom, l + 2, u + 2, w, yLerp)
                        out += 3
                    }
                case 1:
                    for x in 0..<outWidth {
                        out[x] = value(top, bottom, xl[x], xu[x], xw[x], yLerp)
                    }
                default:
                    for x in 0..<outWidth {
                        let l = xl[x], u = xu[x], w = xw[x]
                        for c in 0..<channels {
                            out[c] = value(top, bottom, l + c, u + c, w, yLerp)
                        }
                        out += channels
                    }
                }
            }
        }
        }
        }
    }
}
