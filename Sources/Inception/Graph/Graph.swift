/// A built model graph: nodes in execution order, each with its layer and
/// per-image output shape, plus the memory layout decisions that do not depend
/// on the batch size (which outputs live inside a concatenation's channel
/// slice, which reshapes share their input's memory).
package struct Graph: Sendable {
    /// Where a node's output lives.
    package enum Home: Sendable, Equatable {
        /// Its own block of the arena.
        case own
        /// Channels `offset`… of node `concat`'s output.
        case slice(concat: Int, offset: Int)
        /// The same memory as node `source` (a reshape of a dense tensor).
        case shared(source: Int)
    }

    package private(set) var nodes: [Node]
    package let output: Int
    package private(set) var homes: [Home]
    /// For each node, the index of the last node that reads it.
    package let lastReader: [Int]
    /// 1×1 convolutions of one input computed as one product, by their first member.
    package private(set) var groups: [Int: PointwiseGroup] = [:]
    /// For each grouped node, the member that computes the group.
    package private(set) var leader: [Int: Int] = [:]

    /// Whether graphs group 1×1 convolutions (read when a graph is built).
    nonisolated(unsafe) package static var groupsPointwise = true

    package init(nodes: [Node], output: Int) throws {
        self.nodes = nodes
        self.output = output
        var lastReader = Array(0..<nodes.count)
        var readers = Array(repeating: [Int](), count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in node.inputs {
                lastReader[input] = max(lastReader[input], i)
                readers[input].append(i)
            }
        }
        lastReader[output] = nodes.count
        self.lastReader = lastReader
        homes = Array(repeating: .own, count: nodes.count)
        placeConcatInputs(readers: readers)
        shareReshapes()
        if Self.groupsPointwise { groupPointwise() }
    }

    /// Finds 1×1 stride-1 convolutions that read the same node.
    private mutating func groupPointwise() {
        var byInput: [Int: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            guard node.inputs.count == 1, let conv = node.layer as? Conv2D, conv.isPointwise, i != output else { continue }
            byInput[node.inputs[0], default: []].append(i)
        }
        for (_, members) in byInput where members.count > 1 {
            let convolutions = members.map { nodes[$0].layer as! Conv2D }
            groups[members[0]] = PointwiseGroup(members: members, convolutions: convolutions)
            for (m, var conv) in zip(members, convolutions) {
                leader[m] = members[0]
                conv.releaseKernel()
                nodes[m].layer = conv
            }
        }
    }

    /// The step at which node `i`'s output is written (its group's first member, if grouped).
    package func writtenAt(_ i: Int) -> Int { leader[i] ?? i }

    /// The graph's input nodes (layers without inputs), in order.
    package var inputs: [Int] { nodes.indices.filter { nodes[$0].inputs.isEmpty } }

    /// Lets each concatenation input that nothing else prevents write straight
    /// into its channel slice of the concatenation's output.
    private mutating func placeConcatInputs(readers: [[Int]]) {
        for c in nodes.indices {
            guard var concat = nodes[c].layer as? Concatenate else { continue }
            var offset = 0
            for (i, source) in nodes[c].inputs.enumerated() {
                let node = nodes[source]
                let placeable = !node.inputs.isEmpty
                    && homes[source] == .own
                    && !(node.layer is Reshape)
                    && nodes[c].inputs.filter({ $0 == source }).count == 1
                    && readers[source].allSatisfy({ !(nodes[$0].layer is Dense) })
                    && source != output
                if placeable {
                    homes[source] = .slice(concat: c, offset: offset)
                    concat.copied[i] = false
                }
                offset += node.shape.channels
            }
            nodes[c].layer = concat
        }
    }

    /// Flatten/Reshape/Dropout of a dense tensor need no memory of their own.
    private mutating func shareReshapes() {
        for i in nodes.indices where nodes[i].layer is Reshape && !nodes[i].inputs.isEmpty {
            let source = nodes[i].inputs[0]
            if case .slice = homes[source] { continue }
            if homes[i] == .own { homes[i] = .shared(source: source) }
        }
    }

    /// The node whose memory block holds node `i`'s output, the float offset
    /// of its first channel within a pixel, and its pixel stride.
    package func placement(of i: Int) -> (root: Int, channelOffset: Int, pixelStride: Int) {
        switch homes[i] {
        case .own:
            return (i, 0, nodes[i].shape.channels)
        case let .slice(concat, offset):
            let outer = placement(of: concat)
            return (outer.root, outer.channelOffset + offset, outer.pixelStride)
        case .shared(let source):
            let outer = placement(of: source)
            return (outer.root, 0, nodes[i].shape.channels)
        }
    }

    /// Multiply-accumulates per image of node `i`.
    package func macs(of i: Int) -> Int {
        nodes[i].layer.macs(inputs: nodes[i].inputs.map { nodes[$0].shape })
    }

    /// Multiply-accumulates per image.
    package var macs: Int { nodes.indices.reduce(0) { $0 + macs(of: $1) } }
}
