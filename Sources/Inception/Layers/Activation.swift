/// Element-wise activations that fuse into the producing layer's epilogue.
public enum Activation: String, Sendable {
    case linear, relu, relu6

    /// Keras's activation names.
    package init(keras name: String) throws {
        switch name {
        case "linear": self = .linear
        case "relu": self = .relu
        case "relu6": self = .relu6
        default: throw ModelError("unsupported activation '\(name)'")
        }
    }

    /// Adds `bias` (if any) and applies the activation to `rows` rows of
    /// `cols` values, `ld` floats apart.
    @inline(__always)
    package func apply(rows: Range<Int>, cols: Int, _ p: UnsafeMutablePointer<Float>, ld: Int, bias: UnsafePointer<Float>?) {
        switch (self, bias) {
        case (.linear, nil): return
        case (.linear, let b?):
            for r in rows { let row = p + r * ld; for j in 0..<cols { row[j] += b[j] } }
        case (.relu, nil):
            for r in rows { let row = p + r * ld; for j in 0..<cols { row[j] = max(row[j], 0) } }
        case (.relu, let b?):
            for r in rows { let row = p + r * ld; for j in 0..<cols { row[j] = max(row[j] + b[j], 0) } }
        case (.relu6, nil):
            for r in rows { let row = p + r * ld; for j in 0..<cols { row[j] = min(max(row[j], 0), 6) } }
        case (.relu6, let b?):
            for r in rows { let row = p + r * ld; for j in 0..<cols { row[j] = min(max(row[j] + b[j], 0), 6) } }
        }
    }

    /// The activation of four values (bias already added). Written with masks:
    /// the standard library's `pointwiseMax` is a lane-by-lane loop.
    @inline(__always)
    package func apply(_ x: SIMD4<Float>) -> SIMD4<Float> {
        switch self {
        case .linear: return x
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .relu6:
            let y = x.replacing(with: 0, where: x .< 0)
            return y.replacing(with: 6, where: y .> 6)
        }
    }

    /// Applies the activation to a whole view (with bias per channel), in parallel.
    package func apply(to view: TensorView, batch: Int, bias: UnsafePointer<Float>?) {
        guard self != .linear || bias != nil else { return }
        let rows = batch * view.shape.pixels
        Parallel.forEachChunk(rows, minChunk: 256) { range in
            apply(rows: range, cols: view.shape.channels, view.base, ld: view.pixelStride, bias: bias)
        }
    }
}
