/// Runs a graph. A session owns the memory plan for the batch size it last
/// ran, so repeated requests allocate nothing; it is not thread-safe: use one
/// session per thread (they share the model's weights).
public final class Session {
    package let graph: Graph
    private var plan: Plan?

    package init(graph: Graph) { self.graph = graph }

    /// Floats of activation memory planned for the current batch size.
    public var plannedFloats: Int { (plan?.arenaSize ?? 0) + (plan?.workspaceSize ?? 0) }

    /// Runs `batch` images. `input` holds batch × input-count floats (NHWC) and
    /// `output` receives batch × output-count floats. `observe` is called after
    /// each node with its (last fused) Keras layer name and output view.
    public func run(
        input: UnsafePointer<Float>, batch: Int, output: UnsafeMutablePointer<Float>,
        observe: ((String, TensorView) -> Void)? = nil
    ) {
        precondition(batch > 0)
        if plan?.batch != batch || plan?.threads != Parallel.threads {
            plan = nil
            plan = Plan(graph: graph, batch: batch)
        }
        let plan = plan!
        let inputIndex = graph.inputs[0]
        let inputView = plan.views[inputIndex]
        inputView.base.update(from: input, count: batch * inputView.shape.count)
        for (i, node) in graph.nodes.enumerated() where !node.inputs.isEmpty {
            if case .shared = graph.homes[i] {
                // Same memory as its input: nothing to compute.
            } else {
                node.layer.forward(plan.inputViews[i], plan.views[i], batch: batch, workspace: plan.workspace)
            }
            observe?(node.name, plan.views[i])
        }
        let out = plan.views[graph.output]
        for n in 0..<batch {
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
