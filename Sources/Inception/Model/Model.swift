/// A loaded model: an immutable graph with folded weights, shared by any
/// number of sessions.
public final class Model: Sendable {
    /// The model's name from its file ("inception_v3", "mobilenetv2_1.00_224", …).
    public let name: String
    /// Per-image input shape.
    public let inputShape: Shape
    /// Values per image in the output (class scores).
    public let outputCount: Int
    /// How images are turned into this model's input.
    public let preprocessing: Preprocessing
    /// The input per example as Keras declares it: `[28, 28]` (no channel
    /// axis), `[784]`, `[299, 299, 3]`.
    public let inputDims: [Int]
    /// The output per example as Keras gives it: `[10]`, or an image's `[h, w, c]`.
    public let outputDims: [Int]
    /// How Keras exports this model for TF Serving (nil for the weights-only
    /// InceptionV3 file).
    public let export: KerasExport?
    package let graph: Graph

    /// `inputDims` and `outputRank` default to the engine's view: an image
    /// input and a vector output.
    package init(name: String, graph: Graph, preprocessing: Preprocessing? = nil,
                 inputDims: [Int]? = nil, outputRank: Int = 1, export: KerasExport? = nil) throws {
        let inputs = graph.inputs
        guard inputs.count == 1 else { throw ModelError("the model has \(inputs.count) inputs; one is supported") }
        self.name = name
        self.graph = graph
        inputShape = graph.nodes[inputs[0]].shape
        outputCount = graph.nodes[graph.output].shape.count
        self.inputDims = inputDims ?? [inputShape.height, inputShape.width, inputShape.channels]
        let output = graph.nodes[graph.output].shape
        outputDims = switch outputRank {
        case 1: [output.count]
        case 2: [output.height * output.width, output.channels]
        default: [output.height, output.width, output.channels]
        }
        self.export = export
        self.preprocessing = preprocessing ?? Self.guessPreprocessing(name: name, input: inputShape)
    }

    /// Whether the input is an image (height × width × 1 or 3 channels), so
    /// that a JPEG can be turned into it.
    public var takesImages: Bool {
        inputDims.count == 3 && (inputDims[2] == 1 || inputDims[2] == 3)
    }

    /// Loads a Keras model file: a Keras 3 `.keras` archive, a full-model
    /// HDF5 file, or the official InceptionV3 weights file. Errors name the
    /// file and the first layer that does not fit.
    public convenience init(contentsOf path: String, preprocessing: Preprocessing? = nil) throws {
        let file: KerasFile
        do { file = try KerasFile(path: path) } catch let error as HDF5Error {
            throw ModelError("cannot read model \(path): \(error.message)")
        } catch let error as ModelError {
            throw ModelError("cannot load model \(path): \(error.message)")
        }
        let graph: Graph
        do { graph = try GraphBuilder.build(file.specs, output: file.output, weights: file.weights) } catch let error as ModelError {
            throw ModelError("cannot load model \(path): \(error.message)")
        }
        try self.init(name: file.name, graph: graph, preprocessing: preprocessing,
                      inputDims: file.inputDims, outputRank: file.outputRank, export: file.export)
    }

    /// InceptionV3-style [-1, 1] scaling unless the model says otherwise:
    /// single-channel models take raw 0…255 pixels, MobileNet its quantised scaling.
    private static func guessPreprocessing(name: String, input: Shape) -> Preprocessing {
        if input.channels == 1 { return .raw }
        if name.lowercased().contains("mobilenet") { return .mobilenet }
        return .inception
    }

    /// Multiply-accumulates per image.
    public var macsPerImage: Int { graph.macs }

    /// Names of the graph's layers in execution order (fused layers under the last name).
    public var layerNames: [String] { graph.nodes.map(\.name) }

    /// The kind of each node's layer, parallel to `layerNames` (e.g. "Conv2D 3×3/1").
    public var layerKinds: [String] {
        graph.nodes.map { node in
            if let conv = node.layer as? Conv2D {
                return "Conv2D \(conv.window.kernelH)×\(conv.window.kernelW)/\(conv.window.strideH)"
            }
            return node.layer.kind
        }
    }

    /// Multiply-accumulates per image of each node, parallel to `layerNames`.
    public var layerMACs: [Int] { graph.nodes.indices.map(graph.macs(of:)) }

    /// A new session (its own activation memory) for running this model.
    public func makeSession() -> Session { Session(graph: graph) }

    /// Runs a batch on a fresh session. For repeated use keep a session.
    public func predict(_ input: [Float], batch: Int) -> [Float] {
        precondition(input.count == batch * inputShape.count, "expected \(batch * inputShape.count) input values")
        var output = [Float](repeating: 0, count: batch * outputCount)
        let session = makeSession()
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                session.run(input: i.baseAddress!, batch: batch, output: o.baseAddress!)
            }
        }
        return output
    }
}
