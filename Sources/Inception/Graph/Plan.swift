/// Memory for running a graph on one batch size: every activation gets a
/// place in one arena, reusing the space of activations no longer needed, and
/// all layers share one workspace. Made once per batch size, reused for every
/// request; nothing is allocated while the graph runs.
package final class Plan {
    package let batch: Int
    /// The engine thread count the workspace was sized for (layers split work per thread).
    package let threads: Int
    package let views: [TensorView]
    /// Each node's input views, gathered once so running allocates nothing.
    package let inputViews: [[TensorView]]
    /// Each pointwise group's member outputs, by leader.
    package let groupOutputs: [Int: [TensorView]]
    /// Floats in the arena and the workspace.
    package let arenaSize: Int
    package let workspaceSize: Int
    private let arena: UnsafeMutablePointer<Float>
    package let workspace: UnsafeMutablePointer<Float>

    package init(graph: Graph, batch: Int) {
        self.batch = batch
        self.threads = Parallel.threads
        let nodes = graph.nodes
        // The live range of every memory block: from the first node that writes
        // into it to the last node that reads anything stored in it.
        var first = [Int: Int](), last = [Int: Int]()
        for i in nodes.indices {
            let root = graph.placement(of: i).root
            let written = graph.writtenAt(i)
            first[root] = min(first[root] ?? written, written)
            last[root] = max(last[root] ?? i, graph.lastReader[i])
        }
        var offsets = [Int: Int]()
        var live: [(offset: Int, size: Int, end: Int)] = []
        var top = 0
        var startsAt = [Int: [Int]]()
        for (root, start) in first { startsAt[start, default: []].append(root) }
        for i in nodes.indices {
            live.removeAll { $0.end < i }
            for root in startsAt[i, default: []].sorted() {
            let size = (batch * nodes[root].shape.count + 15) & ~15
            // Lowest gap between live blocks that fits.
            live.sort { $0.offset < $1.offset }
            var offset = 0
            for block in live {
                if block.offset - offset >= size { break }
                offset = max(offset, block.offset + block.size)
            }
            offsets[root] = offset
            live.append((offset, size, last[root]!))
            top = max(top, offset + size)
            }
        }
        let arenaSize = max(top, 16)
        let arena = UnsafeMutablePointer<Float>.allocate(capacity: arenaSize)
        arena.initialize(repeating: 0, count: arenaSize)
        let groupWorkspace = graph.groups.values.map { group in
            group.workspaceSize(pixels: nodes[nodes[group.members[0]].inputs[0]].shape.pixels, batch: batch)
        }.max() ?? 0
        let workspaceSize = max(16, groupWorkspace, nodes.map { node in
            node.layer.workspaceSize(inputs: node.inputs.map { nodes[$0].shape }, batch: batch)
        }.max() ?? 0)
        workspace = .allocate(capacity: workspaceSize)
        workspace.initialize(repeating: 0, count: workspaceSize)
        self.arenaSize = arenaSize
        self.arena = arena
        self.workspaceSize = workspaceSize
        let views = nodes.indices.map { i in
            let p = graph.placement(of: i)
            return TensorView(base: arena + offsets[p.root]! + p.channelOffset, shape: nodes[i].shape, pixelStride: p.pixelStride)
        }
        self.views = views
        inputViews = nodes.map { node in node.inputs.map { views[$0] } }
        groupOutputs = graph.groups.mapValues { group in group.members.map { views[$0] } }
    }

    deinit {
        arena.deallocate()
        workspace.deallocate()
    }
}
