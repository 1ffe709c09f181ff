/// A node of a built graph: one (possibly fused) layer.
package struct Node: Sendable {
    /// The name of the last Keras layer folded into this node (its output is this node's).
    package var name: String
    /// Every Keras layer folded into this node, in order (e.g. conv, batch norm, activation).
    package var fused: [String]
    package var layer: any Layer
    package var inputs: [Int]
    package var shape: Shape
}
