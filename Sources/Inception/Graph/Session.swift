/// Runs a graph. A session owns the memory plan for the batch size it last
/// ran, so repeated requests allocate nothing; it is not thread-safe: use one
/// session per thread (they share the model's weights).
public final class Session {
    package let graph: Graph
    private var plan: Plan?

    package init(graph: Graph) { self.graph = graph }

    /// Floats of activation memory planned for the current batch size.
    public var plannedFloats: Int { (plan?.arenaSize ?? 0) + (plan?.workspaceSize ?? 0) }

    /// Floats of activation memory a batch of `batch` images would plan
    /// (without keeping the plan).
    public func plannedFloats(forBatch batch: Int) -> Int {
        let plan = Plan(graph: graph, batch: batch)
        return plan.arenaSize + plan.workspaceSize
    }

    /// Largest batch planned at once. Bigger batches run in equal slices of
    /// at most this many images (the last one padded), which bounds the
    /// activation memory (about 100 MB for InceptionV3) at no cost in speed:
    /// eight images already fill every product.
    nonisolated(unsafe) package static var largestPlannedBatch = 8

    /// Runs `batch` images. `input` holds batch × input-count floats (NHWC) and
    /// `output` receives batch × output-count floats. `observe` is called after
    /// each node with its (last fused) Keras layer name and output view (once
    /// per slice when the batch runs in slices).
    public func run(
        input: UnsafePointer<Float>, batch: Int, output: UnsafeMutablePointer<Float>,
        observe: ((String, TensorView) -> Void)? = nil
    ) {
        precondition(batch > 0)
        let slices = (batch + Self.largestPlannedBatch - 1) / Self.largestPlannedBatch
        let size = (batch + slices - 1) / slices
        if plan?.batch != size || plan?.threads != Parallel.threads {
            plan = nil
            plan = Plan(graph: graph, batch: size)
        }
        let plan = plan!
        let inCount = graph.nodes[graph.inputs[0]].shape.count
        let outCount = graph.nodes[graph.output].shape.count
        var done = 0
        while done < batch {
            let n = min(size, batch - done)
            run(plan, input: input + done * inCount, images: n, output: output + done * outCount, observe: observe)
            done += n
        }
    }

    /// One pass of the plan over `images` ≤ plan.batch images (the rest of the
    /// planned batch is zeros, and its outputs are dropped).
    private func run(
        _ plan: Plan, input: UnsafePointer<Float>, images: Int, output: UnsafeMutablePointer<Float>,
        observe: ((String, TensorView) -> Void)?
    ) {
        let inputView = plan.views[graph.inputs[0]]
        let perImage = inputView.shape.count
        inputView.base.update(from: input, count: images * perImage)
        if images < plan.batch {
            (inputView.base + images * perImage).update(repeating: 0, count: (plan.batch - images) * perImage)
        }
        let batch = plan.batch
        for (i, node) in graph.nodes.enumerated() where !node.inputs.isEmpty {
            if case .shared = graph.homes[i] {
                // Same memory as its input: nothing to compute.
            } else if let leader = graph.leader[i] {
                // Computed with its group, by the group's first member.
                if leader == i, let group = graph.groups[i], let outputs = plan.groupOutputs[i] {
                    group.forward(plan.inputViews[i][0], outputs, batch: batch, workspace: plan.workspace)
                }
            } else {
                node.layer.forward(plan.inputViews[i], plan.views[i], batch: batch, workspace: plan.workspace)
            }
            observe?(node.name, plan.views[i])
        }
        let out = plan.views[graph.output]
        for n in 0..<images {
            out.copyImageInto(n, output + n * out.shape.count)
        }
    }
}

extension TensorView {
    /// Copies image n densely into `dst`.
    @inline(__always)
    package func copyImageInto(_ n: Int, _ dst: UnsafeMutablePointer<Float>) {
        let c = shape.channels
        if isDense {
            dst.update(from: base + n * batchStride, count: shape.count)
            return
        }
        for p in 0..<shape.pixels {
            (dst + p * c).update(from: base + n * batchStride + p * pixelStride, count: c)
        }
    }
}
