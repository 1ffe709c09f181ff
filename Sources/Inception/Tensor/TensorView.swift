/// A window onto activation memory: `batch` images of `shape`, where consecutive
/// pixels are `pixelStride` floats apart (≥ channels: a view may be one channel
/// slice of a wider tensor, which is how concatenation avoids copies).
/// Image `n` starts at `base + n * batchStride`.
public struct TensorView: @unchecked Sendable {
    // Sendable because a view is only dereferenced by the session that planned it.
    public var base: UnsafeMutablePointer<Float>
    public var shape: Shape
    public var pixelStride: Int

    public init(base: UnsafeMutablePointer<Float>, shape: Shape, pixelStride: Int? = nil) {
        self.base = base
        self.shape = shape
        self.pixelStride = pixelStride ?? shape.channels
    }

    /// Floats from one image to the next.
    @inline(__always) public var batchStride: Int { shape.pixels * pixelStride }
    /// Whether each image's values are contiguous (no channel slicing).
    @inline(__always) public var isDense: Bool { pixelStride == shape.channels || shape.pixels == 1 }

    /// The first channel of pixel (y, x) of image n.
    @inline(__always)
    public func pixel(_ n: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
        base + n * batchStride + (y * shape.width + x) * pixelStride
    }

    /// Copies image n's values out, densely packed (HWC).
    public func copyImage(_ n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: shape.count)
        let c = shape.channels
        out.withUnsafeMutableBufferPointer { dst in
            for p in 0..<shape.pixels {
                let src = base + n * batchStride + p * pixelStride
                (dst.baseAddress! + p * c).update(from: src, count: c)
            }
        }
        return out
    }
}
