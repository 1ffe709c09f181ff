import Foundation
import Inception
import XCTest

/// Every layer of the engine against the deliberately naive references in
/// `Reference/NaiveLayers.swift`, on odd shapes and fixed-seed random data, on
/// dense tensors and on channel-slice views (pixelStride > channels); then small
/// graphs built with `GraphBuilder` (folding, fusion, concat placement) run
/// through `Session`.
final class LayerTests: XCTestCase {
    private var savedParallelThreads = 1
    private var savedBLASThreads = 1

    override func setUp() {
        super.setUp()
        savedParallelThreads = Parallel.threads
        savedBLASThreads = BLAS.threads
        // Two threads so that the engine's chunked loops really split.
        Engine.configure(threads: 2)
    }

    override func tearDown() {
        Parallel.threads = savedParallelThreads
        BLAS.threads = savedBLASThreads
        super.tearDown()
    }

    // MARK: - Conv2D

    func testConv2DMatchesReferenceOverKernelsStridesPaddingsAndActivations() throws {
        var rng = SplitMix64(seed: 1)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        let kernels = [(1, 1), (3, 3), (5, 5), (1, 7), (7, 1), (2, 3)]
        let strides = [(1, 1), (2, 2), (2, 1)]
        var cases = 0
        for (kh, kw) in kernels {
            for (sh, sw) in strides {
                for padding in [Padding.valid, .same] {
                    for outChannels in [5, 17] {
                        for (useBias, activation) in [(false, Activation.linear), (true, .linear), (false, .relu), (true, .relu), (true, .relu6)] {
                            let weights = rng.floats(kh * kw * 13 * outChannels)
                            let bias = useBias ? rng.floats(outChannels) : nil
                            // relu6 only bites if values exceed 6: scale the kernel up for it.
                            let kernel = activation == .relu6 ? weights.map { $0 * 4 } : weights
                            let conv = Conv2D(window: Window(kernelH: kh, kernelW: kw, strideH: sh, strideW: sw, padding: padding),
                                              inChannels: 13, outChannels: outChannels, weights: kernel, bias: bias, activation: activation)
                            let expected = Naive.conv2d(x, kernel: kernel, kh: kh, kw: kw, outChannels: outChannels, bias: bias,
                                                        strideH: sh, strideW: sw, same: padding == .same, activation: activation)
                            try check(conv, [x], expected: expected,
                                      "conv \(kh)×\(kw)/\(sh),\(sw) \(padding) out \(outChannels) bias \(useBias) \(activation)")
                            cases += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(cases, 6 * 3 * 2 * 2 * 5)
    }

    func testPointwiseConvStride1UsesNoWorkspaceAndStride2Does() throws {
        // The 1×1 stride-1 path is a plain sgemm on the input; 1×1 stride 2 goes through im2col.
        var rng = SplitMix64(seed: 2)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        for stride in [1, 2] {
            for padding in [Padding.valid, .same] {
                let kernel = rng.floats(13 * 17), bias = rng.floats(17)
                let conv = Conv2D(window: Window(kernelH: 1, kernelW: 1, strideH: stride, strideW: stride, padding: padding),
                                  inChannels: 13, outChannels: 17, weights: kernel, bias: bias, activation: .relu)
                let workspace = conv.workspaceSize(inputs: [x.shape], batch: 2)
                if stride == 1 { XCTAssertEqual(workspace, 0) } else { XCTAssertGreaterThan(workspace, 0) }
                let expected = Naive.conv2d(x, kernel: kernel, kh: 1, kw: 1, outChannels: 17, bias: bias,
                                            strideH: stride, strideW: stride, same: padding == .same, activation: .relu)
                try check(conv, [x], expected: expected, "1×1/\(stride) \(padding)")
            }
        }
    }

    func testConv2DSplitsIm2colIntoChunksAcrossImages() throws {
        // Two 110×90 images, 3×3 over 32 channels: patch 288, 19800 output rows,
        // more than budget/288 = 14563, so im2col runs in two chunks, the first
        // ending inside the second image.
        var rng = SplitMix64(seed: 3)
        let x = rng.tensor(batch: 2, height: 110, width: 90, channels: 32)
        let kernel = rng.floats(3 * 3 * 32 * 8).map { $0 * 0.2 }, bias = rng.floats(8)
        let conv = Conv2D(window: Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same),
                          inChannels: 32, outChannels: 8, weights: kernel, bias: bias, activation: .relu)
        let rows = 2 * 110 * 90, patch = 288
        let chunkRows = Conv2D.workspaceBudget / patch
        XCTAssertLessThan(chunkRows, rows, "the test must force more than one chunk")
        XCTAssertGreaterThan(chunkRows, 110 * 90, "the first chunk should end inside the second image")
        let workspace = conv.workspaceSize(inputs: [x.shape], batch: 2)
        XCTAssertLessThan(workspace, rows * patch, "the patch matrix must not be built whole")
        XCTAssertLessThanOrEqual(workspace, Conv2D.workspaceBudget + Parallel.threads * patch)
        let expected = Naive.conv2d(x, kernel: kernel, kh: 3, kw: 3, outChannels: 8, bias: bias, same: true, activation: .relu)
        try check(conv, [x], expected: expected, "chunked 3×3")
    }

    func testConv2DChunkedWithStride2AndValidPadding() throws {
        // 1×200×200×32 → 5×5 stride 2 valid: patch 800, 98·98 = 9604 rows,
        // budget/800 = 5242 rows per chunk → two chunks.
        var rng = SplitMix64(seed: 4)
        let x = rng.tensor(batch: 1, height: 200, width: 200, channels: 32)
        let kernel = rng.floats(5 * 5 * 32 * 3).map { $0 * 0.1 }
        let conv = Conv2D(window: Window(kernelH: 5, kernelW: 5, strideH: 2, strideW: 2, padding: .valid),
                          inChannels: 32, outChannels: 3, weights: kernel, bias: nil, activation: .linear)
        XCTAssertLessThan(Conv2D.workspaceBudget / 800, 98 * 98)
        let expected = Naive.conv2d(x, kernel: kernel, kh: 5, kw: 5, outChannels: 3, strideH: 2, strideW: 2, same: false)
        try check(conv, [x], expected: expected, "chunked 5×5/2")
    }

    func testConv2DWithFewRowsAndManyOutputChannels() throws {
        // Few output pixels and many output channels: the work is split by
        // output channels rather than by rows.
        var rng = SplitMix64(seed: 17)
        for batch in [1, 2] {
            let x = rng.tensor(batch: batch, height: 4, width: 5, channels: 13)
            for (kh, kw, stride, padding) in [(1, 1, 1, Padding.valid), (1, 1, 2, .same), (3, 3, 1, .same), (3, 3, 2, .valid), (2, 3, 1, .valid)] {
                for outChannels in [40, 50, 97] {
                    for (useBias, activation) in [(false, Activation.linear), (true, .relu)] {
                        let kernel = rng.floats(kh * kw * 13 * outChannels)
                        let bias = useBias ? rng.floats(outChannels) : nil
                        let conv = Conv2D(window: Window(kernelH: kh, kernelW: kw, strideH: stride, strideW: stride, padding: padding),
                                          inChannels: 13, outChannels: outChannels, weights: kernel, bias: bias, activation: activation)
                        let expected = Naive.conv2d(x, kernel: kernel, kh: kh, kw: kw, outChannels: outChannels, bias: bias,
                                                    strideH: stride, strideW: stride, same: padding == .same, activation: activation)
                        try check(conv, [x], expected: expected,
                                  "batch \(batch) conv \(kh)×\(kw)/\(stride) \(padding) out \(outChannels) \(activation)")
                    }
                }
            }
        }
    }

    func testConv2DRejectsWrongChannelsAndWindowsThatDoNotFit() {
        let conv = Conv2D(window: Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .valid),
                          inChannels: 13, outChannels: 5, weights: Array(repeating: 0, count: 9 * 13 * 5), bias: nil, activation: .linear)
        XCTAssertThrowsError(try conv.outputShape(for: [Shape(height: 9, width: 7, channels: 12)]))
        XCTAssertThrowsError(try conv.outputShape(for: [Shape(height: 2, width: 7, channels: 13)]))
        XCTAssertEqual(try conv.outputShape(for: [Shape(height: 9, width: 7, channels: 13)]), Shape(height: 7, width: 5, channels: 5))
    }

    // MARK: - DepthwiseConv2D

    func testDepthwiseConv2DMatchesReference() throws {
        var rng = SplitMix64(seed: 5)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        for (kh, kw) in [(3, 3), (2, 3), (5, 5)] {
            for multiplier in [1, 2] {
                for stride in [1, 2] {
                    for padding in [Padding.valid, .same] {
                        for (useBias, activation) in [(false, Activation.linear), (true, .relu6)] {
                            let kernel = rng.floats(kh * kw * 13 * multiplier).map { $0 * (activation == .relu6 ? 4 : 1) }
                            let bias = useBias ? rng.floats(13 * multiplier) : nil
                            let layer = DepthwiseConv2D(window: Window(kernelH: kh, kernelW: kw, strideH: stride, strideW: stride, padding: padding),
                                                        channels: 13, multiplier: multiplier, weights: kernel, bias: bias, activation: activation)
                            let expected = Naive.depthwiseConv2d(x, kernel: kernel, kh: kh, kw: kw, multiplier: multiplier, bias: bias,
                                                                 strideH: stride, strideW: stride, same: padding == .same, activation: activation)
                            try check(layer, [x], expected: expected,
                                      "depthwise \(kh)×\(kw)/\(stride) ×\(multiplier) \(padding) \(activation)")
                        }
                    }
                }
            }
        }
    }

    // MARK: - Pooling

    func testPool2DMatchesReference() throws {
        var rng = SplitMix64(seed: 6)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        // All negative: a max pool that counted padding as zeros would show it.
        var negative = x
        negative.values = negative.values.map { $0 - 2 }
        for (kh, kw, sh, sw) in [(3, 3, 1, 1), (3, 3, 2, 2), (2, 3, 2, 1), (1, 1, 2, 2), (5, 5, 3, 3)] {
            for padding in [Padding.valid, .same] {
                let window = Window(kernelH: kh, kernelW: kw, strideH: sh, strideW: sw, padding: padding)
                let same = padding == .same
                for input in [x, negative] {
                    try check(Pool2D(mode: .max, window: window), [input],
                              expected: Naive.maxPool(input, kh: kh, kw: kw, strideH: sh, strideW: sw, same: same),
                              "max \(kh)×\(kw)/\(sh),\(sw) \(padding)")
                    try check(Pool2D(mode: .average, window: window), [input],
                              expected: Naive.averagePool(input, kh: kh, kw: kw, strideH: sh, strideW: sw, same: same),
                              "average \(kh)×\(kw)/\(sh),\(sw) \(padding)")
                }
            }
        }
    }

    func testSameAveragePoolDividesByRealPixelsOnly() throws {
        // A constant image stays constant under `same` average pooling only if
        // the padded corners divide by 4 (2×2 real pixels), not by 9.
        let x = NaiveTensor(batch: 1, height: 4, width: 5, channels: 2, repeating: 3)
        let window = Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)
        let out = try forwardDense(Pool2D(mode: .average, window: window), [x])
        XCTAssertEqual(out.shape, x.shape)
        for v in out.values { XCTAssertEqual(v, 3, accuracy: 1e-6) }
    }

    func testGlobalAveragePoolMatchesReference() throws {
        var rng = SplitMix64(seed: 7)
        for (h, w) in [(9, 7), (1, 1), (8, 8)] {
            let x = rng.tensor(batch: 2, height: h, width: w, channels: 13)
            try check(GlobalAveragePool(), [x], expected: Naive.globalAveragePool(x), "GAP \(h)×\(w)")
        }
    }

    // MARK: - Dense, Softmax

    func testDenseMatchesReference() throws {
        var rng = SplitMix64(seed: 8)
        for (h, w, c) in [(1, 1, 13), (3, 2, 5)] {
            let x = rng.tensor(batch: 3, height: h, width: w, channels: c)
            let inputs = h * w * c
            for units in [5, 17] {
                for (useBias, activation) in [(false, Activation.linear), (true, .linear), (true, .relu), (true, .relu6)] {
                    let kernel = rng.floats(inputs * units).map { $0 * (activation == .relu6 ? 4 : 1) }
                    let bias = useBias ? rng.floats(units) : nil
                    let dense = Dense(inputs: inputs, units: units, weights: kernel, bias: bias, activation: activation)
                    let expected = Naive.dense(x, kernel: kernel, units: units, bias: bias, activation: activation)
                    // Dense needs a dense input (the graph never slices it); its output may be a slice.
                    try check(dense, [x], expected: expected, "dense \(h)×\(w)×\(c) → \(units) \(activation)", sliceInputs: h * w == 1)
                }
            }
        }
    }

    func testSoftmaxMatchesReferenceAndIsStableForLargeLogits() throws {
        var rng = SplitMix64(seed: 9)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        try check(Softmax(), [x], expected: Naive.softmax(x), "softmax")
        var big = rng.tensor(batch: 2, height: 1, width: 1, channels: 17)
        big.values = big.values.map { $0 * 200 }
        let out = try check(Softmax(), [big], expected: Naive.softmax(big), "softmax large logits")
        for n in 0..<2 {
            let sum = out.values[(n * 17)..<((n + 1) * 17)].reduce(0, +)
            XCTAssertEqual(sum, 1, accuracy: 1e-5)
        }
    }

    // MARK: - Element-wise

    func testAddMatchesReference() throws {
        var rng = SplitMix64(seed: 10)
        let xs = (0..<3).map { _ in rng.tensor(batch: 2, height: 9, width: 7, channels: 13) }
        try check(Add(activation: .relu), xs, expected: Naive.relu(Naive.add(xs)), "add 3 relu")
        try check(Add(), Array(xs.prefix(2)), expected: Naive.add(Array(xs.prefix(2))), "add 2 linear")
        let scaled = xs.map { t -> NaiveTensor in var t = t; t.values = t.values.map { $0 * 5 }; return t }
        try check(Add(activation: .relu6), scaled, expected: Naive.relu6(Naive.add(scaled)), "add 3 relu6")
        XCTAssertThrowsError(try Add().outputShape(for: [xs[0].shape]))
        XCTAssertThrowsError(try Add().outputShape(for: [xs[0].shape, Shape(height: 9, width: 7, channels: 12)]))
    }

    func testChannelAffineMatchesBatchNormReference() throws {
        var rng = SplitMix64(seed: 11)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        let gamma = rng.floats(13).map { $0 * 4 + 5 }, beta = rng.floats(13)
        let mean = rng.floats(13), variance = rng.floats(13).map { $0 * 0.5 + 0.6 }
        let eps: Float = 1e-3
        let scale = (0..<13).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
        let shift = (0..<13).map { beta[$0] - mean[$0] * scale[$0] }
        let bn = Naive.batchNorm(x, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: eps)
        for activation in [Activation.linear, .relu, .relu6] {
            try check(ChannelAffine(scale: scale, shift: shift, activation: activation), [x],
                      expected: Naive.activate(bn, activation), "affine \(activation)")
        }
    }

    func testActivationLayerMatchesReference() throws {
        var rng = SplitMix64(seed: 12)
        var x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        x.values = x.values.map { $0 * 10 }
        for activation in [Activation.linear, .relu, .relu6] {
            try check(ActivationLayer(activation), [x], expected: Naive.activate(x, activation), "activation \(activation)")
        }
    }

    // MARK: - Reshaping

    func testZeroPaddingMatchesReference() throws {
        var rng = SplitMix64(seed: 13)
        let x = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        for (t, b, l, r) in [(1, 2, 0, 3), (0, 0, 0, 0), (3, 1, 2, 0)] {
            try check(ZeroPadding(top: t, bottom: b, left: l, right: r), [x],
                      expected: Naive.zeroPadding(x, top: t, bottom: b, left: l, right: r), "zero padding \(t),\(b),\(l),\(r)")
        }
    }

    func testConcatenateCopyPathMatchesReference() throws {
        var rng = SplitMix64(seed: 14)
        let xs = [5, 1, 7].map { rng.tensor(batch: 2, height: 9, width: 7, channels: $0) }
        try check(Concatenate(inputs: 3), xs, expected: Naive.concatenate(xs), "concat copy")
        // Only the inputs marked `copied` are written.
        var partial = Concatenate(inputs: 3)
        partial.copied = [true, false, true]
        let out = try forwardDense(partial, xs)
        let full = Naive.concatenate(xs)
        for i in 0..<out.values.count {
            if i % 13 == 5 { XCTAssert(out.values[i].isNaN, "uncopied channel written at \(i)") } else {
                XCTAssertEqual(out.values[i], full.values[i])
            }
        }
        XCTAssertThrowsError(try Concatenate(inputs: 2).outputShape(for: [xs[0].shape, Shape(height: 9, width: 6, channels: 1)]))
    }

    func testReshapeCopiesAStridedInput() throws {
        var rng = SplitMix64(seed: 15)
        let x = rng.tensor(batch: 2, height: 3, width: 4, channels: 5)
        let flat = NaiveTensor(batch: 2, height: 1, width: 1, channels: 60, values: x.values)
        // Reshape's output is always dense (the graph never slices it); its input may be a slice.
        try check(Reshape(kind: "Flatten", target: Shape(vector: 60)), [x], expected: flat, "flatten", sliceOutput: false)
        XCTAssertThrowsError(try Reshape(kind: "Reshape", target: Shape(vector: 59)).outputShape(for: [x.shape]))
    }

    // MARK: - Strided views

    func testSliceViewsLeaveOtherChannelsUntouched() throws {
        // `check` already runs every layer on slice views; this checks the
        // checker: a layer that writes past its slice must be caught.
        struct Sloppy: Layer {
            var kind: String { "Sloppy" }
            func outputShape(for inputs: [Shape]) throws -> Shape { inputs[0] }
            func forward(_ inputs: [TensorView], _ output: TensorView, batch: Int, workspace: UnsafeMutablePointer<Float>) {
                let c = output.shape.channels
                for r in 0..<(batch * output.shape.pixels) {
                    // Writes one channel too many.
                    for k in 0...c { output.base[r * output.pixelStride + k] = k < c ? inputs[0].base[r * inputs[0].pixelStride + k] : 0 }
                }
            }
        }
        var rng = SplitMix64(seed: 16)
        let x = rng.tensor(batch: 2, height: 3, width: 3, channels: 4)
        let result = try forward(Sloppy(), [x], inputSlices: [nil], outputSlice: ViewSlice(pixelStride: 9, offset: 2), reportFailures: false)
        XCTAssertFalse(result.outsideUntouched, "the harness must notice writes outside the output slice")
        XCTAssertEqual(result.output, x)
    }

    // MARK: - Graphs

    func testConvBatchNormReLUFoldsIntoOneNodeAndMatchesTheUnfusedChain() throws {
        var rng = SplitMix64(seed: 20)
        let configs: [(kh: Int, kw: Int, stride: Int, padding: Padding, bias: Bool, scale: Bool, relu: LayerSpec.Kind)] = [
            (3, 3, 1, .same, false, false, .activation("relu")),
            (3, 3, 2, .valid, true, true, .relu(maxValue: nil)),
            (1, 1, 1, .valid, false, true, .relu(maxValue: 6)),
            (1, 7, 1, .same, true, false, .activation("relu")),
            (5, 5, 2, .same, false, true, .relu(maxValue: nil)),
        ]
        for config in configs {
            var g = GraphFixture(rng: rng)
            g.input("input", Shape(height: 9, width: 7, channels: 13))
            g.conv("conv", "input", filters: 17, config.kh, config.kw, stride: config.stride, padding: config.padding, bias: config.bias)
            g.batchNorm("bn", "conv", scale: config.scale)
            g.add(LayerSpec("relu", config.relu, inputs: ["bn"]))
            rng = g.rng
            let graph = try g.build()
            XCTAssertEqual(graph.nodes.count, 2, "conv, bn and relu should fold into one node")
            XCTAssertEqual(graph.nodes[1].fused, ["conv", "bn", "relu"])
            XCTAssert(graph.nodes[1].layer is Conv2D)
            let input = rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
            try g.compare(graph, input: input, "\(config)")
        }
    }

    func testDepthwiseBatchNormReLU6Folds() throws {
        var g = GraphFixture(rng: SplitMix64(seed: 21))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.depthwise("dw", "input", multiplier: 2, 3, 3, stride: 2, padding: .same, bias: false)
        g.batchNorm("bn", "dw", scale: true)
        g.add(LayerSpec("relu6", .relu(maxValue: 6), inputs: ["bn"]))
        let graph = try g.build()
        XCTAssertEqual(graph.nodes.count, 2)
        XCTAssert(graph.nodes[1].layer is DepthwiseConv2D)
        try g.compare(graph, input: g.rng.tensor(batch: 2, height: 9, width: 7, channels: 13), "depthwise")
    }

    func testBatchNormThatCannotFoldBecomesChannelAffine() throws {
        // conv feeds both the batch norm and the add, so the batch norm must not
        // change the conv's output; it becomes its own node.
        var g = GraphFixture(rng: SplitMix64(seed: 22))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.conv("conv", "input", filters: 5, 3, 3, stride: 1, padding: .same, bias: true)
        g.batchNorm("bn", "conv", scale: true)
        g.add(LayerSpec("relu", .activation("relu"), inputs: ["bn"]))
        g.add(LayerSpec("sum", .add, inputs: ["relu", "conv"]))
        // Conv with a Keras activation: the batch norm after it cannot fold either.
        g.conv("conv2", "sum", filters: 6, 1, 1, stride: 1, padding: .valid, bias: true, activation: "relu")
        g.batchNorm("bn2", "conv2", scale: false)
        let graph = try g.build()
        XCTAssertEqual(graph.nodes.filter { $0.layer is ChannelAffine }.count, 2)
        try g.compare(graph, input: g.rng.tensor(batch: 2, height: 9, width: 7, channels: 13), "unfoldable")
    }

    func testInceptionBlockMatchesNaiveComputation() throws {
        var g = GraphFixture(rng: SplitMix64(seed: 23))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.inceptionBlock("m1", input: "input")
        g.add(LayerSpec("gap", .globalAveragePool, inputs: ["m1"]))
        g.dense("predictions", "gap", units: 7, activation: "softmax")
        let graph = try g.build()

        // The branches write straight into their channel slices, the nested
        // concat included.
        let homes = Dictionary(uniqueKeysWithValues: graph.nodes.indices.map { (graph.nodes[$0].name, graph.homes[$0]) })
        let index = Dictionary(uniqueKeysWithValues: graph.nodes.indices.map { (graph.nodes[$0].name, $0) })
        let m1 = try XCTUnwrap(index["m1"]), inner = try XCTUnwrap(index["m1_b4"])
        XCTAssertEqual(homes["m1_b1_relu"], .slice(concat: m1, offset: 0))
        XCTAssertEqual(homes["m1_b2b"], .slice(concat: m1, offset: 5))
        XCTAssertEqual(homes["m1_b3_conv"], .slice(concat: m1, offset: 11))
        XCTAssertEqual(homes["m1_b4"], .slice(concat: m1, offset: 14))
        XCTAssertEqual(homes["m1_b4b"], .slice(concat: inner, offset: 0))
        XCTAssertEqual(homes["m1_b4c"], .slice(concat: inner, offset: 3))
        XCTAssertEqual(homes["m1_b4a"], .own)
        XCTAssertEqual(graph.placement(of: try XCTUnwrap(index["m1_b4c"])).channelOffset, 17)
        XCTAssertEqual(graph.placement(of: try XCTUnwrap(index["m1_b4c"])).pixelStride, 20)

        var rng = g.rng
        let input = rng.tensor(batch: 3, height: 9, width: 7, channels: 13)
        let batched = try g.compare(graph, input: input, "inception block")
        XCTAssertEqual(batched.count, 3 * 7)
        // Batch 3 equals three batch-1 runs.
        let model = try Model(name: "block", graph: graph)
        for n in 0..<3 {
            let single = model.predict(input.image(n).values, batch: 1)
            assertClose(single, Array(batched[(n * 7)..<((n + 1) * 7)]), tolerance: 1e-5, "image \(n) alone")
        }
        // The concatenation itself, every channel of every pixel.
        let concatGraph = try g.build(output: "m1")
        try g.compare(concatGraph, input: input, "inception block concat output", output: "m1")
        // And the logits, before the softmax flattens differences.
        try g.compare(try g.build(output: "predictions/logits"), input: input, "inception logits", naiveOutput: "predictions:logits")
    }

    func testTwoStackedInceptionBlocksReuseTheArena() throws {
        var g = GraphFixture(rng: SplitMix64(seed: 24))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.inceptionBlock("m1", input: "input")
        g.inceptionBlock("m2", input: "m1")
        g.add(LayerSpec("pool", .maxPool(Window(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padding: .valid)), inputs: ["m2"]))
        g.add(LayerSpec("flatten", .flatten, inputs: ["pool"]))
        g.dense("predictions", "flatten", units: 11, activation: "linear", inputs: 4 * 3 * 20)
        let graph = try g.build()
        try g.compare(graph, input: g.rng.tensor(batch: 2, height: 9, width: 7, channels: 13), "two blocks")
        let plan = Plan(graph: graph, batch: 2)
        let everything = graph.nodes.reduce(0) { $0 + 2 * $1.shape.count }
        XCTAssertLessThan(plan.arenaSize, everything, "the planner should reuse memory")
    }

    func testConcatCopyPathsInGraphs() throws {
        // The graph input, a node used twice in one concat, and a node read by
        // two concats cannot all be placed: the copies must still be right.
        var g = GraphFixture(rng: SplitMix64(seed: 25))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.conv("a", "input", filters: 5, 3, 3, stride: 1, padding: .same, bias: true, activation: "relu")
        g.conv("b", "input", filters: 4, 1, 1, stride: 1, padding: .valid, bias: false)
        g.add(LayerSpec("cat1", .concatenate, inputs: ["input", "a", "a"]))
        g.add(LayerSpec("cat2", .concatenate, inputs: ["b", "a"]))
        g.add(LayerSpec("cat3", .concatenate, inputs: ["b", "cat2"]))
        g.add(LayerSpec("pool", .averagePool(Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)), inputs: ["cat3"]))
        // A dense layer reading a spatial concat input directly: that input
        // must stay dense (Dense flattens it), so it cannot live in a slice.
        g.conv("c", "input", filters: 3, 3, 3, stride: 2, padding: .valid, bias: true)
        g.conv("c2", "input", filters: 2, 3, 3, stride: 2, padding: .valid, bias: false)
        g.dense("fc_c", "c", units: 4, activation: "linear", inputs: 4 * 3 * 3)
        g.add(LayerSpec("out", .concatenate, inputs: ["cat1", "pool", "b"]))
        g.add(LayerSpec("small", .concatenate, inputs: ["c", "c2"]))
        let graph = try g.build(output: "out")
        let concats = graph.nodes.compactMap { $0.layer as? Concatenate }
        XCTAssert(concats.contains { $0.copied.contains(true) }, "some inputs must take the copy path")
        let input = g.rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        try g.compare(graph, input: input, "concat copies", output: "out")
        try g.compare(try g.build(output: "fc_c"), input: input, "dense beside a concat", output: "fc_c")
        try g.compare(try g.build(output: "small"), input: input, "concat beside a dense", output: "small")
    }

    func testDenseAfterConcatAndPaddingInGraph() throws {
        var g = GraphFixture(rng: SplitMix64(seed: 26))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.add(LayerSpec("pad", .zeroPadding(top: 1, bottom: 0, left: 2, right: 1), inputs: ["input"]))
        g.conv("a", "pad", filters: 3, 3, 3, stride: 2, padding: .valid, bias: true, activation: "relu6")
        g.add(LayerSpec("p", .maxPool(Window(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padding: .valid)), inputs: ["pad"]))
        g.add(LayerSpec("cat", .concatenate, inputs: ["a", "p"]))
        g.add(LayerSpec("drop", .dropout, inputs: ["cat"]))
        g.add(LayerSpec("flat", .flatten, inputs: ["drop"]))
        g.dense("fc", "flat", units: 6, activation: "relu", inputs: 4 * 4 * 16)
        g.dense("predictions", "fc", units: 4, activation: "softmax")
        // Reshapes of a tensor that lives in a concat slice must copy, not share.
        g.add(LayerSpec("a_drop", .dropout, inputs: ["a"]))
        g.add(LayerSpec("a_reshape", .reshape([4 * 4 * 3]), inputs: ["a"]))
        let graph = try g.build(output: "predictions")
        let input = g.rng.tensor(batch: 2, height: 9, width: 7, channels: 13)
        try g.compare(graph, input: input, "dense after concat", output: "predictions")
        try g.compare(try g.build(output: "a_drop"), input: input, "dropout of a slice", output: "a_drop")
        try g.compare(try g.build(output: "a_reshape"), input: input, "reshape of a slice", output: "a_reshape")
    }

    func testWrongWeightShapeNamesTheLayer() throws {
        func expectError(_ g: GraphFixture, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try g.build(), file: file, line: line) { error in
                guard let error = error as? ModelError else {
                    return XCTFail("expected a ModelError, got \(error)", file: file, line: line)
                }
                for word in words {
                    XCTAssert(error.message.contains(word), "'\(error.message)' should mention \(word)", file: file, line: line)
                }
            }
        }
        var base = GraphFixture(rng: SplitMix64(seed: 27))
        base.input("input", Shape(height: 9, width: 7, channels: 13))
        base.conv("first", "input", filters: 5, 1, 1, stride: 1, padding: .valid, bias: true)

        // Kernel shaped for 4 filters instead of 5.
        var g = base
        g.conv("conv_bad", "first", filters: 6, 3, 3, stride: 1, padding: .same, bias: false)
        g.weights["conv_bad"] = [WeightArray(name: "conv_bad/kernel:0", shape: [3, 3, 5, 4], values: Array(repeating: 0, count: 3 * 3 * 5 * 4))]
        expectError(g, mentioning: ["'conv_bad'", "kernel"])

        // Right shape, wrong number of values.
        g = base
        g.conv("conv_short", "first", filters: 6, 3, 3, stride: 1, padding: .same, bias: false)
        g.weights["conv_short"]![0].values.removeLast()
        expectError(g, mentioning: ["'conv_short'"])

        // A missing bias.
        g = base
        g.conv("conv_nobias", "first", filters: 6, 3, 3, stride: 1, padding: .same, bias: true)
        g.weights["conv_nobias"]!.removeLast()
        expectError(g, mentioning: ["'conv_nobias'"])

        // Batch norm for the wrong channel count.
        g = base
        g.batchNorm("bn_bad", "first", scale: true)
        g.weights["bn_bad"] = g.weights["bn_bad"]!.map { WeightArray(name: $0.name, shape: [4], values: Array($0.values.prefix(4))) }
        expectError(g, mentioning: ["'bn_bad'"])

        // Dense for the wrong input size.
        g = base
        g.add(LayerSpec("gap", .globalAveragePool, inputs: ["first"]))
        g.dense("fc_bad", "gap", units: 3, activation: "linear", inputs: 6)
        expectError(g, mentioning: ["'fc_bad'"])

        // The base itself builds: the errors above come from the bad layers.
        XCTAssertNoThrow(try base.build())
    }

    func testSessionRunTwiceGivesIdenticalOutput() throws {
        var g = GraphFixture(rng: SplitMix64(seed: 28))
        g.input("input", Shape(height: 9, width: 7, channels: 13))
        g.inceptionBlock("m1", input: "input")
        g.inceptionBlock("m2", input: "m1")
        g.add(LayerSpec("gap", .globalAveragePool, inputs: ["m2"]))
        g.dense("predictions", "gap", units: 7, activation: "linear")
        let graph = try g.build()
        let model = try Model(name: "twice", graph: graph)
        let session = model.makeSession()
        var rng = g.rng
        let input = rng.tensor(batch: 3, height: 9, width: 7, channels: 13)
        let other = rng.tensor(batch: 1, height: 9, width: 7, channels: 13)

        func run(_ x: NaiveTensor) -> [Float] {
            var out = [Float](repeating: .nan, count: x.batch * model.outputCount)
            x.values.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer { o in session.run(input: i.baseAddress!, batch: x.batch, output: o.baseAddress!) }
            }
            return out
        }
        let first = run(input)
        XCTAssertFalse(first.contains { $0.isNaN })
        let second = run(input)
        XCTAssertEqual(first, second, "a second run on the same session must give the same output")
        _ = run(other)             // a different batch size re-plans
        let third = run(input)
        XCTAssertEqual(first, third)
        _ = run(input.image(2))
        XCTAssertEqual(run(input), first)
        // And it is the right answer, not just a stable one.
        let expected = g.naive(input)["predictions"]!
        assertClose(first, expected.values, tolerance: 1e-4, "session output")
        XCTAssertEqual(model.predict(input.values, batch: 3), first)
    }
}

// MARK: - Random data

extension SplitMix64 {
    fileprivate mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }

    fileprivate mutating func tensor(batch: Int, height: Int, width: Int, channels: Int) -> NaiveTensor {
        NaiveTensor(batch: batch, height: height, width: width, channels: channels,
                    values: floats(batch * height * width * channels))
    }
}

// MARK: - Running one layer

/// Where a tensor lives inside a wider buffer: channels offset… of pixels `pixelStride` floats apart.
private struct ViewSlice {
    var pixelStride: Int
    var offset: Int
}

private struct ForwardResult {
    var output: NaiveTensor
    /// Whether the floats of the output buffer outside the output's slice kept their sentinel.
    var outsideUntouched: Bool
}

/// Written around an output slice and after every buffer; a layer must never change it.
private let sentinel: Float = -4242.5
/// Floats of sentinel after the end of every buffer (inputs, output, workspace).
private let guardZone = 64

extension LayerTests {
    /// Runs `layer` once on `inputs` laid out as `inputSlices` (nil: dense),
    /// writing an output laid out as `outputSlice`. Input floats outside their
    /// slices are NaN (reading them poisons the output), the output slice
    /// starts as NaN (anything not written shows), the workspace is NaN.
    /// Fails the test if the layer changes its inputs, floats outside its
    /// output slice, or the guard zone after any buffer (workspace included).
    fileprivate func forward(_ layer: any Layer, _ inputs: [NaiveTensor], inputSlices: [ViewSlice?]? = nil,
                             outputSlice: ViewSlice? = nil, reportFailures: Bool = true, label: String = "",
                             file: StaticString = #filePath, line: UInt = #line) throws -> ForwardResult {
        let batch = inputs[0].batch
        let shapes = inputs.map(\.shape)
        let outShape = try layer.outputShape(for: shapes)
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        defer { buffers.forEach { $0.deallocate() } }
        var views: [TensorView] = []
        var snapshots: [[UInt32]] = []
        for (i, x) in inputs.enumerated() {
            precondition(x.batch == batch)
            let slice = inputSlices?[i] ?? ViewSlice(pixelStride: x.channels, offset: 0)
            let rows = batch * x.height * x.width
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * slice.pixelStride + guardZone)
            buffers.append(buffer)
            buffer.initialize(repeating: .nan)
            for g in 0..<guardZone { buffer[rows * slice.pixelStride + g] = sentinel }
            for r in 0..<rows {
                for c in 0..<x.channels { buffer[r * slice.pixelStride + slice.offset + c] = x.values[r * x.channels + c] }
            }
            snapshots.append(buffer.map(\.bitPattern))
            views.append(TensorView(base: buffer.baseAddress! + slice.offset, shape: x.shape, pixelStride: slice.pixelStride))
        }
        let outSlice = outputSlice ?? ViewSlice(pixelStride: outShape.channels, offset: 0)
        let outRows = batch * outShape.pixels
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: outRows * outSlice.pixelStride + guardZone)
        buffers.append(out)
        out.initialize(repeating: sentinel)
        for r in 0..<outRows {
            for c in 0..<outShape.channels { out[r * outSlice.pixelStride + outSlice.offset + c] = .nan }
        }
        let workspaceCount = max(1, layer.workspaceSize(inputs: shapes, batch: batch))
        let workspace = UnsafeMutableBufferPointer<Float>.allocate(capacity: workspaceCount + guardZone)
        buffers.append(workspace)
        workspace.initialize(repeating: .nan)
        for g in 0..<guardZone { workspace[workspaceCount + g] = sentinel }

        layer.forward(views, TensorView(base: out.baseAddress! + outSlice.offset, shape: outShape, pixelStride: outSlice.pixelStride),
                      batch: batch, workspace: workspace.baseAddress!)

        for (i, snapshot) in snapshots.enumerated() where buffers[i].map(\.bitPattern) != snapshot {
            if reportFailures { XCTFail("\(label): \(layer.kind) changed its input \(i)", file: file, line: line) }
        }
        var untouched = true
        for g in 0..<guardZone where out[outRows * outSlice.pixelStride + g].bitPattern != sentinel.bitPattern { untouched = false }
        for g in 0..<guardZone where workspace[workspaceCount + g].bitPattern != sentinel.bitPattern {
            if reportFailures { XCTFail("\(label): \(layer.kind) wrote past its workspace (\(workspaceCount) floats)", file: file, line: line) }
            break
        }
        var result = NaiveTensor(batch: batch, height: outShape.height, width: outShape.width, channels: outShape.channels)
        for r in 0..<outRows {
            for k in 0..<outSlice.pixelStride {
                let v = out[r * outSlice.pixelStride + k]
                let c = k - outSlice.offset
                if c >= 0, c < outShape.channels {
                    result.values[r * outShape.channels + c] = v
                } else if v.bitPattern != sentinel.bitPattern {
                    untouched = false
                }
            }
        }
        if reportFailures, !untouched {
            XCTFail("\(label): \(layer.kind) wrote outside its output slice or past the end of its output", file: file, line: line)
        }
        return ForwardResult(output: result, outsideUntouched: untouched)
    }

    fileprivate func forwardDense(_ layer: any Layer, _ inputs: [NaiveTensor]) throws -> NaiveTensor {
        try forward(layer, inputs, inputSlices: nil, outputSlice: nil).output
    }

    /// Runs `layer` on dense views, then on channel-slice views of wider
    /// buffers, and compares both with `expected`. Returns the dense output.
    @discardableResult
    fileprivate func check(_ layer: any Layer, _ inputs: [NaiveTensor], expected: NaiveTensor, _ label: String,
                           sliceInputs: Bool = true, sliceOutput: Bool = true, tolerance: Float = 1e-4,
                           file: StaticString = #filePath, line: UInt = #line) throws -> NaiveTensor {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var first: NaiveTensor?
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let tag = "\(threads) thread\(threads == 1 ? "" : "s")"
            let dense = try forward(layer, inputs, label: "\(label) (dense, \(tag))", file: file, line: line).output
            assertClose(dense, expected, tolerance: tolerance, "\(label) (dense, \(tag))", file: file, line: line)
            first = first ?? dense
            guard sliceInputs || sliceOutput else { continue }
            let inputSlices: [ViewSlice?] = inputs.enumerated().map { i, x in
                sliceInputs ? ViewSlice(pixelStride: x.channels + 3 + 2 * i, offset: 1 + i) : nil
            }
            let outputSlice = sliceOutput ? ViewSlice(pixelStride: expected.channels + 4, offset: 3) : nil
            let sliced = try forward(layer, inputs, inputSlices: inputSlices, outputSlice: outputSlice,
                                     label: "\(label) (slices, \(tag))", file: file, line: line).output
            assertClose(sliced, expected, tolerance: tolerance, "\(label) (slices, \(tag))", file: file, line: line)
        }
        return first!
    }
}

// MARK: - Comparing

/// |actual - expected| ≤ tolerance · max(1, |expected|) everywhere (NaN never passes).
private func assertClose(_ actual: NaiveTensor, _ expected: NaiveTensor, tolerance: Float, _ label: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    guard actual.shape == expected.shape, actual.batch == expected.batch else {
        return XCTFail("\(label): shape \(actual.batch)×\(actual.shape), expected \(expected.batch)×\(expected.shape)", file: file, line: line)
    }
    assertClose(actual.values, expected.values, tolerance: tolerance, label, channels: expected.channels,
                width: expected.width, height: expected.height, file: file, line: line)
}

private func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ label: String,
                         channels: Int = 1, width: Int = 1, height: Int = 1,
                         file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        return XCTFail("\(label): \(actual.count) values, expected \(expected.count)", file: file, line: line)
    }
    var bad = 0
    var worst = (index: -1, error: Float(0))
    for i in 0..<actual.count {
        let error = abs(actual[i] - expected[i]) / max(1, abs(expected[i]))
        if !(error <= tolerance) {
            bad += 1
            if worst.index < 0 || !(error <= worst.error) { worst = (i, error) }
        }
    }
    if bad > 0 {
        let i = worst.index
        let c = i % channels, p = i / channels
        let x = p % width, y = (p / width) % height, n = p / (width * height)
        XCTFail("\(label): \(bad) of \(actual.count) values off; worst at n \(n) y \(y) x \(x) c \(c): \(actual[i]) vs \(expected[i])",
                file: file, line: line)
    }
}

// MARK: - Building graphs

/// Layer specs plus random weights (in Keras's order and shapes), and a naive
/// interpreter for the same specs.
private struct GraphFixture {
    var specs: [LayerSpec] = []
    var weights: [String: [WeightArray]] = [:]
    var rng: SplitMix64
    /// Channels and flattened size of every layer's output, for weight shapes.
    private var channels: [String: Int] = [:]

    init(rng: SplitMix64) { self.rng = rng }

    mutating func add(_ spec: LayerSpec) {
        specs.append(spec)
        let inputs = spec.inputs.map { channels[$0] ?? 0 }
        switch spec.kind {
        case .input(let shape): channels[spec.name] = shape.channels
        case let .conv2D(filters, _, _, _): channels[spec.name] = filters
        case let .depthwiseConv2D(_, multiplier, _, _): channels[spec.name] = inputs[0] * multiplier
        case let .dense(units, _, _): channels[spec.name] = units
        case .concatenate: channels[spec.name] = inputs.reduce(0, +)
        default: channels[spec.name] = inputs.first ?? 0
        }
    }

    private mutating func array(_ layer: String, _ name: String, _ shape: [Int], scale: Float = 1, offset: Float = 0) -> WeightArray {
        let values = rng.floats(shape.reduce(1, *)).map { $0 * scale + offset }
        return WeightArray(name: "\(layer)/\(name):0", shape: shape, values: values)
    }

    mutating func input(_ name: String, _ shape: Shape) {
        add(LayerSpec(name, .input(shape), inputs: []))
    }

    mutating func conv(_ name: String, _ input: String, filters: Int, _ kh: Int, _ kw: Int, stride: Int, padding: Padding,
                       bias: Bool, activation: String = "linear") {
        let cin = channels[input]!
        let window = Window(kernelH: kh, kernelW: kw, strideH: stride, strideW: stride, padding: padding)
        add(LayerSpec(name, .conv2D(filters: filters, window: window, useBias: bias, activation: activation), inputs: [input]))
        var list = [array(name, "kernel", [kh, kw, cin, filters], scale: 1.7 / Float(kh * kw * cin).squareRoot())]
        if bias { list.append(array(name, "bias", [filters], scale: 0.5)) }
        weights[name] = list
    }

    mutating func depthwise(_ name: String, _ input: String, multiplier: Int, _ kh: Int, _ kw: Int, stride: Int,
                            padding: Padding, bias: Bool, activation: String = "linear") {
        let c = channels[input]!
        let window = Window(kernelH: kh, kernelW: kw, strideH: stride, strideW: stride, padding: padding)
        add(LayerSpec(name, .depthwiseConv2D(window: window, multiplier: multiplier, useBias: bias, activation: activation), inputs: [input]))
        var list = [array(name, "depthwise_kernel", [kh, kw, c, multiplier], scale: 1.7 / Float(kh * kw).squareRoot())]
        if bias { list.append(array(name, "bias", [c * multiplier], scale: 0.5)) }
        weights[name] = list
    }

    mutating func batchNorm(_ name: String, _ input: String, scale: Bool, epsilon: Float = 1e-3) {
        let c = channels[input]!
        add(LayerSpec(name, .batchNormalization(epsilon: epsilon, center: true, scale: scale), inputs: [input]))
        var list: [WeightArray] = []
        if scale { list.append(array(name, "gamma", [c], scale: 0.5, offset: 1)) }
        list.append(array(name, "beta", [c], scale: 0.5))
        list.append(array(name, "moving_mean", [c], scale: 0.5))
        list.append(array(name, "moving_variance", [c], scale: 0.5, offset: 0.7))
        weights[name] = list
    }

    /// `inputs`: the flattened input size (default: the input's channels, right after a pool or flatten).
    mutating func dense(_ name: String, _ input: String, units: Int, activation: String, inputs: Int? = nil) {
        let n = inputs ?? channels[input]!
        add(LayerSpec(name, .dense(units: units, useBias: true, activation: activation), inputs: [input]))
        weights[name] = [array(name, "kernel", [n, units], scale: 1.7 / Float(n).squareRoot()),
                         array(name, "bias", [units], scale: 0.5)]
    }

    /// Four branches — 1×1 (+BN+ReLU); 1×1→3×3; avgpool→1×1; 1×1→(1×3 ‖ 3×1)
    /// as a nested concat — concatenated: 5+6+3+6 = 20 channels.
    mutating func inceptionBlock(_ p: String, input: String) {
        conv("\(p)_b1", input, filters: 5, 1, 1, stride: 1, padding: .valid, bias: false)
        batchNorm("\(p)_b1_bn", "\(p)_b1", scale: false)
        add(LayerSpec("\(p)_b1_relu", .activation("relu"), inputs: ["\(p)_b1_bn"]))
        conv("\(p)_b2a", input, filters: 4, 1, 1, stride: 1, padding: .valid, bias: true, activation: "relu")
        conv("\(p)_b2b", "\(p)_b2a", filters: 6, 3, 3, stride: 1, padding: .same, bias: true, activation: "relu")
        add(LayerSpec("\(p)_b3_pool", .averagePool(Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)), inputs: [input]))
        conv("\(p)_b3_conv", "\(p)_b3_pool", filters: 3, 1, 1, stride: 1, padding: .valid, bias: true, activation: "relu")
        conv("\(p)_b4a", input, filters: 4, 1, 1, stride: 1, padding: .valid, bias: true, activation: "relu")
        conv("\(p)_b4b", "\(p)_b4a", filters: 3, 1, 3, stride: 1, padding: .same, bias: true, activation: "relu")
        conv("\(p)_b4c", "\(p)_b4a", filters: 3, 3, 1, stride: 1, padding: .same, bias: true, activation: "relu")
        add(LayerSpec("\(p)_b4", .concatenate, inputs: ["\(p)_b4b", "\(p)_b4c"]))
        add(LayerSpec(p, .concatenate, inputs: ["\(p)_b1_relu", "\(p)_b2b", "\(p)_b3_conv", "\(p)_b4"]))
    }

    func build(output: String? = nil) throws -> Graph {
        try GraphBuilder.build(specs, output: output, weights: weights)
    }

    /// Runs the model on `input` through `Model.predict` and compares with the
    /// naive interpretation of the specs. Returns the engine's output.
    @discardableResult
    func compare(_ graph: Graph, input: NaiveTensor, _ label: String, output: String? = nil, naiveOutput: String? = nil,
                 file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        let model = try Model(name: "test", graph: graph)
        XCTAssertEqual(model.inputShape, input.shape, file: file, line: line)
        let name = naiveOutput ?? output ?? specs.last!.name
        let expected = try XCTUnwrap(naive(input)[name], "no naive value for \(name)", file: file, line: line)
        XCTAssertEqual(model.outputCount, expected.shape.count, file: file, line: line)
        // Each `predict` plans a fresh session, so changing the thread count in between is safe.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var first: [Float]?
        for threads in [2, 1, 3] {
            Parallel.threads = threads
            let got = model.predict(input.values, batch: input.batch)
            assertClose(got, expected.values, tolerance: 1e-4, "\(label) (\(threads) threads)", channels: expected.channels,
                        width: expected.width, height: expected.height, file: file, line: line)
            first = first ?? got
        }
        return first!
    }

    /// Every layer's output, computed layer by layer with the naive references
    /// (no folding, no fusion). A Keras softmax activation on a dense or conv
    /// layer also records the logits under "name:logits".
    func naive(_ input: NaiveTensor) -> [String: NaiveTensor] {
        var values: [String: NaiveTensor] = [:]
        for spec in specs {
            let xs = spec.inputs.map { values[$0]! }
            func w(_ short: String) -> [Float]? {
                weights[spec.name]?.first { $0.name == "\(spec.name)/\(short):0" }?.values
            }
            func activate(_ x: NaiveTensor, _ name: String) -> NaiveTensor {
                switch name {
                case "linear": return x
                case "relu": return Naive.relu(x)
                case "relu6": return Naive.relu6(x)
                case "softmax":
                    values["\(spec.name):logits"] = x
                    return Naive.softmax(x)
                default: fatalError("activation \(name)")
                }
            }
            let y: NaiveTensor
            switch spec.kind {
            case .input:
                y = input
            case let .conv2D(filters, window, useBias, activation):
                y = activate(Naive.conv2d(xs[0], kernel: w("kernel")!, kh: window.kernelH, kw: window.kernelW, outChannels: filters,
                                          bias: useBias ? w("bias")! : nil, strideH: window.strideH, strideW: window.strideW,
                                          same: window.padding == .same), activation)
            case let .depthwiseConv2D(window, multiplier, useBias, activation):
                y = activate(Naive.depthwiseConv2d(xs[0], kernel: w("depthwise_kernel")!, kh: window.kernelH, kw: window.kernelW,
                                                   multiplier: multiplier, bias: useBias ? w("bias")! : nil,
                                                   strideH: window.strideH, strideW: window.strideW,
                                                   same: window.padding == .same), activation)
            case let .dense(units, useBias, activation):
                y = activate(Naive.dense(xs[0], kernel: w("kernel")!, units: units, bias: useBias ? w("bias")! : nil), activation)
            case let .batchNormalization(epsilon, center, scale):
                y = Naive.batchNorm(xs[0], gamma: scale ? w("gamma")! : nil, beta: center ? w("beta")! : nil,
                                    mean: w("moving_mean")!, variance: w("moving_variance")!, epsilon: epsilon)
            case .activation(let name):
                y = activate(xs[0], name)
            case .relu(let maxValue):
                y = maxValue == 6 ? Naive.relu6(xs[0]) : Naive.relu(xs[0])
            case .softmax:
                y = Naive.softmax(xs[0])
            case .maxPool(let window):
                y = Naive.maxPool(xs[0], kh: window.kernelH, kw: window.kernelW, strideH: window.strideH, strideW: window.strideW,
                                  same: window.padding == .same)
            case .averagePool(let window):
                y = Naive.averagePool(xs[0], kh: window.kernelH, kw: window.kernelW, strideH: window.strideH,
                                      strideW: window.strideW, same: window.padding == .same)
            case .globalAveragePool:
                y = Naive.globalAveragePool(xs[0])
            case .concatenate:
                y = Naive.concatenate(xs)
            case .add:
                y = Naive.add(xs)
            case .flatten:
                let x = xs[0]
                y = NaiveTensor(batch: x.batch, height: 1, width: 1, channels: x.height * x.width * x.channels, values: x.values)
            case .dropout:
                y = xs[0]
            case .reshape(let dims):
                let x = xs[0]
                y = dims.count == 1
                    ? NaiveTensor(batch: x.batch, height: 1, width: 1, channels: dims[0], values: x.values)
                    : NaiveTensor(batch: x.batch, height: dims[0], width: dims[1], channels: dims[2], values: x.values)
            case let .zeroPadding(top, bottom, left, right):
                y = Naive.zeroPadding(xs[0], top: top, bottom: bottom, left: left, right: right)
            }
            values[spec.name] = y
        }
        return values
    }
}
