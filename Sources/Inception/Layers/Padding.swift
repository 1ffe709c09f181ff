/// Keras/TensorFlow padding modes.
public enum Padding: String, Sendable {
    case valid, same

    /// Output size and padding before, for one spatial axis, as TensorFlow computes them.
    @inline(__always)
    package func geometry(input: Int, kernel: Int, stride: Int) -> (output: Int, padBefore: Int) {
        switch self {
        case .valid:
            return (input >= kernel ? (input - kernel) / stride + 1 : 0, 0)
        case .same:
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + kernel - input, 0)
            return (output, total / 2)
        }
    }
}

/// A 2-D sliding window: kernel, strides and padding.
package struct Window: Sendable, Equatable {
    package var kernelH: Int, kernelW: Int
    package var strideH: Int, strideW: Int
    package var padding: Padding

    package init(kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padding: Padding) {
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.padding = padding
    }

    /// Output height/width and the top/left padding for an input shape.
    package func geometry(_ input: Shape) -> (height: Int, width: Int, padTop: Int, padLeft: Int) {
        let v = padding.geometry(input: input.height, kernel: kernelH, stride: strideH)
        let h = padding.geometry(input: input.width, kernel: kernelW, stride: strideW)
        return (v.output, h.output, v.padBefore, h.padBefore)
    }

    package func outputShape(_ input: Shape, channels: Int) throws -> Shape {
        let g = geometry(input)
        guard g.height > 0, g.width > 0 else {
            throw ModelError("a \(kernelH)×\(kernelW) window does not fit a \(input) input")
        }
        return Shape(height: g.height, width: g.width, channels: channels)
    }
}
