import Foundation
import Inception
import XCTest

/// InceptionV3 with the fixture weights (seeded random, official file layout)
/// against TensorFlow's reference outputs.
final class InceptionV3Tests: XCTestCase {
    private var model: Model { get throws { try SharedData.model(SharedData.inceptionWeights) } }
    private let jpegs = SharedData.referenceImages.filter { $0.file.hasSuffix(".jpg") }

    private func reference(_ name: String, _ kind: String) throws -> [Float] {
        try SharedData.floats("\(SharedData.inceptionRef)/\(name).\(kind).f32")
    }

    /// Runs the model on inputs, returning each image's output and, if asked, layer outputs of image 0.
    private func run(_ model: Model, inputs: [[Float]], capture: Set<String> = []) -> (outputs: [[Float]], layers: [String: [Float]]) {
        let session = model.makeSession()
        let flat = inputs.flatMap { $0 }
        var out = [Float](repeating: 0, count: inputs.count * model.outputCount)
        var layers: [String: [Float]] = [:]
        flat.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                session.run(input: i.baseAddress!, batch: inputs.count, output: o.baseAddress!) { name, view in
                    if capture.contains(name) { layers[name] = view.copyImage(0) }
                }
            }
        }
        let n = model.outputCount
        return ((0..<inputs.count).map { Array(out[($0 * n)..<(($0 + 1) * n)]) }, layers)
    }

    func testArchitectureMatchesTheFixture() throws {
        let model = try self.model
        XCTAssertEqual(model.name, "inception_v3")
        XCTAssertEqual(model.inputShape, Shape(height: 299, width: 299, channels: 3))
        XCTAssertEqual(model.outputCount, 1000)
        XCTAssertEqual(Double(model.macsPerImage) / 1e9, 5.713, accuracy: 0.001)
        XCTAssertEqual(model.preprocessing, .inception)
    }

    func testProbabilitiesAndLogitsMatchTensorFlowForEveryReferenceInput() throws {
        let model = try self.model
        for (name, _) in SharedData.referenceImages {
            let input = try reference(name, "input")
            let (outputs, layers) = run(model, inputs: [input], capture: ["predictions/logits", "avg_pool"])
            let probs = outputs[0]
            let wantProbs = try reference(name, "probs")
            XCTAssertLessThan(maxAbsDiff(probs, wantProbs), 1e-4, "\(name): probabilities")
            let logits = try XCTUnwrap(layers["predictions/logits"], "logits not observed")
            let wantLogits = try reference(name, "logits")
            for (got, want) in zip(logits, wantLogits) {
                XCTAssertLessThanOrEqual(abs(got - want), 1e-3 * max(1, abs(want)), "\(name): logit")
            }
            XCTAssertEqual(topIndices(probs, 5), topIndices(wantProbs, 5), "\(name): top-5")
            XCTAssertLessThan(maxAbsDiff(try XCTUnwrap(layers["avg_pool"]), try reference(name, "pool")), 1e-4, "\(name): pooled features")
        }
    }

    func testIntermediateActivationsOfCatMatchTensorFlow() throws {
        let model = try self.model
        let input = try reference("cat", "input")
        let (_, layers) = run(model, inputs: [input], capture: ["activation_1", "mixed0", "mixed7"])
        for (layer, file, tolerance) in [("activation_1", "conv2d_1", Float(1e-4)), ("mixed0", "mixed0", 1e-4), ("mixed7", "mixed7", 1e-4)] {
            let got = try XCTUnwrap(layers[layer], "\(layer) not observed")
            let want = try reference("cat", file)
            XCTAssertEqual(got.count, want.count, layer)
            XCTAssertLessThan(maxAbsDiff(got, want), tolerance, layer)
        }
    }

    func testJPEGsThroughOurDecodingGiveTensorFlowsInputAndTopOne() throws {
        let model = try self.model
        let classifier = Classifier(model: model)
        let manifest = try SharedData.json("\(SharedData.inceptionRef)/manifest.json")
        let images = try XCTUnwrap(manifest["images"] as? [String: [String: Any]])
        for (name, file) in jpegs {
            let jpeg = try SharedData.image(file)
            let input = try XCTUnwrap(classifier.preprocessor).prepare(jpeg)
            let want = try reference(name, "input")
            let meanAbs = zip(input, want).reduce(0) { $0 + abs($1.0 - $1.1) } / Float(want.count)
            XCTAssertLessThan(meanAbs, 2e-3, "\(name): input tensor")
            let top = try classifier.classify([jpeg], top: 1)[0].get()
            let wantTop = try XCTUnwrap((images[name]?["top5"] as? [Int])?.first)
            XCTAssertEqual(top.first?.index, wantTop, "\(name): top-1")
        }
    }

    func testBatchOfFiveEqualsFiveSingleRuns() throws {
        let model = try self.model
        let names = ["cat", "cat_720p", "grace_hopper", "hot_dog", "parrot"]
        let inputs = try names.map { try reference($0, "input") }
        let batched = run(model, inputs: inputs).outputs
        for (i, input) in inputs.enumerated() {
            let single = run(model, inputs: [input]).outputs[0]
            XCTAssertLessThan(maxAbsDiff(batched[i], single), 2e-5, "\(names[i])")
        }
    }

    func testABatchLargerThanAPlanRunsInSlicesWithTheSameOutputs() throws {
        let model = try self.model
        let largest = Session.largestPlannedBatch
        defer { Session.largestPlannedBatch = largest }
        Session.largestPlannedBatch = 2
        // 5 images run as slices of 2, 2 and 1 + one zero-padded image.
        let names = ["cat", "cat_720p", "grace_hopper", "hot_dog", "parrot"]
        let inputs = try names.map { try reference($0, "input") }
        let session = model.makeSession()
        var sliced = [Float](repeating: .nan, count: 5 * model.outputCount)
        let flat = inputs.flatMap { $0 }
        flat.withUnsafeBufferPointer { i in
            sliced.withUnsafeMutableBufferPointer { o in session.run(input: i.baseAddress!, batch: 5, output: o.baseAddress!) }
        }
        XCTAssertEqual(session.plannedFloats, model.makeSession().plannedFloats(forBatch: 2))
        for (i, input) in inputs.enumerated() {
            let single = run(model, inputs: [input]).outputs[0]
            XCTAssertLessThan(maxAbsDiff(Array(sliced[(i * model.outputCount)..<((i + 1) * model.outputCount)]), single), 2e-5, names[i])
        }
    }

    func testGroupedPointwiseConvolutionsEqualSeparateOnes() throws {
        let grouped = try self.model
        // The 1×1 branch heads of each block share one product: four in mixed0–2,
        // mixed4–7, mixed9 and mixed10 (with the pool branch's, now before its
        // pooling), two in mixed8 (mixed3 has only one).
        XCTAssertEqual(grouped.graph.groups.count, 10)
        XCTAssertEqual(grouped.graph.groups.values.map(\.members.count).sorted(), [2] + Array(repeating: 4, count: 9))
        let pools = grouped.graph.nodes.compactMap { $0.layer as? Pool2D }.filter { $0.mode == .average }
        XCTAssertEqual(pools.count, 9)
        XCTAssertTrue(pools.allSatisfy { $0.activation == .relu && $0.bias != nil }, "each pool branch's bias and ReLU move to its pooling")
        Graph.groupsPointwise = false
        defer { Graph.groupsPointwise = true }
        let separate = try Model(contentsOf: SharedData.inceptionWeights)
        XCTAssertTrue(separate.graph.groups.isEmpty)
        let input = try reference("cat", "input")
        let a = run(grouped, inputs: [input], capture: ["mixed2", "mixed7"])
        let b = run(separate, inputs: [input], capture: ["mixed2", "mixed7"])
        // Only the order of the sums differs.
        XCTAssertLessThan(maxAbsDiff(a.outputs[0], b.outputs[0]), 2e-5)
        XCTAssertLessThan(maxAbsDiff(try XCTUnwrap(a.layers["mixed2"]), try XCTUnwrap(b.layers["mixed2"])), 1e-4)
        XCTAssertLessThan(maxAbsDiff(try XCTUnwrap(a.layers["mixed7"]), try XCTUnwrap(b.layers["mixed7"])), 1e-4)
    }

    func testLabelsFollowTheImageNetConvention() throws {
        let model = try self.model
        let labels = try Labels(contentsOf: SharedData.imageNetLabels, classes: model.outputCount)
        XCTAssertEqual(labels[892], "wall clock")
        XCTAssertEqual(labels[0], "tench")
        let found = Labels.defaultPath(forModel: SharedData.inceptionWeights, classes: 1000, environment: [:])
        XCTAssertEqual(found.map { URL(fileURLWithPath: $0).standardized.path }, URL(fileURLWithPath: SharedData.imageNetLabels).standardized.path)
        let classifier = Classifier(model: model, labels: labels)
        let top = try classifier.classify([try SharedData.image("cat.jpg")], top: 5)[0].get()
        XCTAssertEqual(top.map(\.label), ["wall clock", "jacamar", "basenji", "volcano", "porcupine"])
        XCTAssertEqual(top[0].score, 0.0980, accuracy: 1e-4)
    }
}
