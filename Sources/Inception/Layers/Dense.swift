/// A fully connected layer over each image's flattened (HWC) values, with bias
/// and a fused activation; one `sgemm` for the whole batch.
package struct Dense: Layer {
    package let inputs: Int
    package let units: Int
    /// [inputs][units], Keras's layout.
    package var weights: [Float]
    package var bias: [Float]?
    package var activation: Activation

    package init(inputs: Int, units: Int, weights: [Float], bias: [Float]?, activation: Activation) {
        precondition(weights.count == inputs * units)
        self.inputs = inputs
        self.units = units
        self.weights = weights
        self.bias = bias
        self.activation = activation
    }

    package var kind: String { "Dense" }

    package func outputShape(for shapes: [Shape]) throws -> Shape {
        guard shapes.count == 1, shapes[0].count == inputs else {
            throw ModelError("Dense expects \(inputs) inputs, got \(shapes.map(\.description))")
        }
        return Shape(vector: units)
    }

    package func macs(inputs: [Shape]) -> Int { self.inputs * units }

    package func forward(_ views: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
        let input = views[0]
        precondition(input.isDense, "Dense needs a dense input")
        // Each thread multiplies a slice of the units (its own columns of the weights).
        weights.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            Parallel.forEachChunk(units, minChunk: 64) { columns in
                BLAS.sgemm(m: batch, n: columns.count, k: inputs,
                           a: input.base, lda: input.batchStride,
                           b: w + columns.lowerBound, ldb: units,
                           c: output.base + columns.lowerBound, ldc: output.batchStride)
            }
        }
        bias.withBaseAddress { b in
            activation.apply(rows: 0..<batch, cols: units, output.base, ld: output.batchStride, bias: b)
        }
    }
}
