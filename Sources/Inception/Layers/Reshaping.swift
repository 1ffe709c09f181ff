/// Concatenate along channels. The planner normally places each input
/// straight into its channel slice of the output, so there is nothing to do;
/// inputs it could not place (`copied`) are copied here.
package struct Concatenate: Layer {
    /// For each input: whether it must be copied into its slice.
    package var copied: [Bool]
    package init(inputs: Int) { copied = Array(repeating: true, count: inputs) }
    package var kind: String { "Concatenate" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard let first = inputs.first,
              inputs.allSatisfy({ $0.height == first.height && $0.width == first.width }) else {
            throw ModelError("Concatenate needs inputs of one height and width, got \(inputs.map(\.description))")
        }
        return Shape(height: first.height, width: first.width, channels: inputs.reduce(0) { $0 + $1.channels })
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        var offset = 0
        for (i, input) in inputs.enumerated() {
            let c = input.shape.channels
            if copied[i] {
                let rows = batch * input.shape.pixels
                for r in 0..<rows {
                    (output.base + r * output.pixelStride + offset).update(from: input.base + r * input.pixelStride, count: c)
                }
            }
            offset += c
        }
    }
}

/// Flatten, Reshape and Dropout (identity at inference): the values keep their
/// order, so the planner lets the output share the input's memory when it is
/// dense; otherwise this copies.
package struct Reshape: Layer {
    package let target: Shape?
    package let name: String
    /// `target` nil keeps the input's shape (Dropout); Flatten gives a vector.
    package init(kind: String, target: Shape?) {
        self.name = kind
        self.target = target
    }
    package var kind: String { name }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("\(name) takes one input") }
        guard let target else { return inputs[0] }
        guard target.count == inputs[0].count else {
            throw ModelError("\(name) cannot make \(inputs[0]) (\(inputs[0].count) values) into \(target)")
        }
        return target
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        for n in 0..<batch {
            let values = input.copyImage(n)
            values.withUnsafeBufferPointer { (output.base + n * output.batchStride).update(from: $0.baseAddress!, count: values.count) }
        }
    }
}

/// ZeroPadding2D.
package struct ZeroPadding: Layer {
    package let top: Int, bottom: Int, left: Int, right: Int
    package init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }
    package var kind: String { "ZeroPadding2D" }

    package func outputShape(for inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1 else { throw ModelError("ZeroPadding2D takes one input") }
        let s = inputs[0]
        return Shape(height: s.height + top + bottom, width: s.width + left + right, channels: s.channels)
    }

    package func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let c = output.shape.channels
        for n in 0..<batch {
            for y in 0..<output.shape.height {
                for x in 0..<output.shape.width {
                    let dst = output.pixel(n, y, x)
                    let iy = y - top, ix = x - left
                    if iy >= 0, iy < input.shape.height, ix >= 0, ix < input.shape.width {
                        dst.update(from: input.pixel(n, iy, ix), count: c)
                    } else {
                        dst.update(repeating: 0, count: c)
                    }
                }
            }
        }
    }
}
