/// One operation of a model graph. A layer owns its (already folded) weights
/// and computes its output view from its input views; it never allocates.
package protocol Layer: Sendable {
    /// The kind shown in errors and summaries, e.g. "Conv2D".
    var kind: String { get }
    /// The per-image output shape for these input shapes.
    func outputShape(for inputs: [Shape]) throws -> Shape
    /// Floats of scratch memory `forward` needs for a batch.
    func workspaceSize(inputs: [Shape], batch: Int) -> Int
    /// Multiply-accumulates per image (for GFLOP/s figures).
    func macs(inputs: [Shape]) -> Int
    /// Computes `output` from `inputs` for `batch` images.
    func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>)
}

extension Layer {
    package func workspaceSize(inputs: [Shape], batch: Int) -> Int { 0 }
    package func macs(inputs: [Shape]) -> Int { 0 }
}

/// Errors found while building a graph.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
