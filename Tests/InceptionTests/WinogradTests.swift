import Foundation
import Inception
import XCTest

/// Stride-1 3×3 convolutions take the Winograd F(4×4, 3×3) path; it must
/// agree with the naive convolution for odd sizes (partial tiles at the
/// edges, channel counts that are not a multiple of the vector width), both
/// paddings, every activation, channel slices, chunked layers and any thread
/// count.
final class WinogradTests: XCTestCase {
    private var wasEnabled = false
    private var minimumTiles = 0
    private var minimumTilesPerImage = 0

    override func setUp() {
        super.setUp()
        wasEnabled = Winograd.enabled
        minimumTiles = Winograd.minimumTiles
        minimumTilesPerImage = Winograd.minimumTilesPerImage
        Winograd.enabled = true
        Winograd.minimumTiles = 1
        Winograd.minimumTilesPerImage = 1
    }

    override func tearDown() {
        Parallel.threads = 1
        Winograd.enabled = wasEnabled
        Winograd.minimumTiles = minimumTiles
        Winograd.minimumTilesPerImage = minimumTilesPerImage
        super.tearDown()
    }

    private func run(batch: Int, height: Int, width: Int, cin: Int, cout: Int, padding: Padding,
                     activation: Activation, threads: Int, outputStride extra: Int = 0, seed: UInt64,
                     kernelH kh: Int = 3, kernelW kw: Int = 3, tolerance: Float = 1e-4) throws {
        Parallel.threads = threads
        var g = SplitMix64(seed: seed)
        let x = NaiveTensor(batch: batch, height: height, width: width, channels: cin,
                            values: (0..<(batch * height * width * cin)).map { _ in g.float() })
        let kernel = (0..<(kh * kw * cin * cout)).map { _ in g.float() * 0.3 }
        let bias = (0..<cout).map { _ in g.float() }
        let window = Window(kernelH: kh, kernelW: kw, strideH: 1, strideW: 1, padding: padding)
        var conv = Conv2D(window: window, inChannels: cin, outChannels: cout, weights: kernel, bias: bias, activation: activation)
        conv.prepare(input: Shape(height: height, width: width, channels: cin))
        let outShape = try conv.outputShape(for: [Shape(height: height, width: width, channels: cin)])
        if kh == kw {
            XCTAssertNotNil(conv.winograd)
            XCTAssertTrue(conv.usesWinograd(outShape, batch: batch), "the Winograd path should be taken")
        } else {
            XCTAssertNotNil(conv.winograd1D)
            XCTAssertTrue(conv.usesWinograd1D(outShape, batch: batch), "the one-axis Winograd path should be taken")
        }
        let expected = Naive.conv2d(x, kernel: kernel, kh: kh, kw: kw, outChannels: cout, bias: bias, same: padding == .same,
                                    activation: activation)
        let stride = cout + extra
        let input = UnsafeMutablePointer<Float>.allocate(capacity: x.values.count)
        defer { input.deallocate() }
        x.values.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: x.values.count) }
        let outCount = batch * outShape.pixels * stride
        let output = UnsafeMutablePointer<Float>.allocate(capacity: outCount)
        defer { output.deallocate() }
        output.initialize(repeating: .nan, count: outCount)
        let ws = conv.workspaceSize(inputs: [x.shape], batch: batch)
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: max(ws, 1))
        defer { workspace.deallocate() }
        conv.forward([TensorView(base: input, shape: x.shape)], TensorView(base: output, shape: outShape, pixelStride: stride),
                     batch: batch, workspace: workspace)
        var worst: Float = 0
        for p in 0..<(batch * outShape.pixels) {
            for o in 0..<cout {
                let got = output[p * stride + o], want = expected.values[p * cout + o]
                worst = max(worst, abs(got - want) / max(1, abs(want)))
            }
            for o in cout..<stride { XCTAssertTrue(output[p * stride + o].isNaN, "wrote outside its channel slice") }
        }
        XCTAssertLessThan(worst, tolerance, "\(kh)×\(kw) \(batch)×\(height)×\(width)×\(cin)→\(cout) \(padding) \(activation) threads \(threads)")
    }

    func testMatchesTheNaiveConvolution() throws {
        var seed: UInt64 = 1
        for (h, w) in [(9, 7), (16, 16), (13, 11), (35, 35)] {
            for padding in [Padding.same, .valid] {
                for activation in [Activation.linear, .relu, .relu6] {
                    for threads in [1, 2, 3] {
                        seed += 1
                        try run(batch: 2, height: h, width: w, cin: 13, cout: 17, padding: padding,
                                activation: activation, threads: threads, seed: seed)
                    }
                }
            }
        }
    }

    func testFiveByFiveKernelsMatchTheNaiveConvolution() throws {
        // F(2×2, 5×5): odd sizes leave partial 2×2 tiles; valid padding shrinks the output by 4.
        var seed: UInt64 = 300
        for (h, w) in [(9, 7), (13, 12), (35, 35)] {
            for padding in [Padding.same, .valid] {
                for threads in [1, 2] {
                    seed += 1
                    try run(batch: 2, height: h, width: w, cin: 13, cout: 17, padding: padding, activation: .relu,
                            threads: threads, seed: seed, kernelH: 5, kernelW: 5)
                }
            }
        }
        try run(batch: 1, height: 35, width: 35, cin: 48, cout: 64, padding: .same, activation: .relu6, threads: 2,
                outputStride: 5, seed: 399, kernelH: 5, kernelW: 5)
    }

    func testKernelMatrixForThreeTapsIsLavins() {
        let lavin: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                                 [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        let g = Winograd.kernelMatrix(r: 3)
        for (row, want) in zip(g, lavin) {
            for (x, y) in zip(row, want) { XCTAssertEqual(x, y, accuracy: 1e-15) }
        }
        XCTAssertEqual(Winograd.kernelMatrix(r: 5).count, 6)
    }

    func testOneAxisKernelsMatchTheNaiveConvolution() throws {
        var seed: UInt64 = 500
        // F(4, 7) for 1×7 and 7×1, F(4, 3) for 1×3 and 3×1; 17 and 11 leave partial tiles.
        for (kh, kw) in [(1, 7), (7, 1), (1, 3), (3, 1)] {
            for (h, w) in [(17, 17), (9, 11)] {
                for padding in [Padding.same, .valid] {
                    for threads in [1, 2] {
                        seed += 1
                        try run(batch: 2, height: h, width: w, cin: 13, cout: 17, padding: padding, activation: .relu,
                                threads: threads, seed: seed, kernelH: kh, kernelW: kw)
                    }
                }
            }
        }
        try run(batch: 1, height: 17, width: 17, cin: 24, cout: 20, padding: .same, activation: .relu6, threads: 2,
                outputStride: 9, seed: 600, kernelH: 7, kernelW: 1)
    }

    func testEveryOneAxisTileSizeMatchesTheNaiveConvolution() throws {
        // The Toom–Cook matrices for F(m, r), run directly: 2×13 rows of 23 pixels, same padding.
        for r in [3, 5, 7] {
            for m in [2, 3, 4, 6] where m + r - 2 <= 11 {
                var g = SplitMix64(seed: UInt64(m * 10 + r))
                let (cin, cout, width) = (9, 11, 23)
                let x = NaiveTensor(batch: 2, height: 13, width: width, channels: cin,
                                    values: (0..<(2 * 13 * width * cin)).map { _ in g.float() })
                let kernel = (0..<(r * cin * cout)).map { _ in g.float() * 0.3 }
                let want = Naive.conv2d(x, kernel: kernel, kh: 1, kw: r, outChannels: cout, same: true)
                let plan = Winograd1D(outputs: m, kernel: r)
                XCTAssertEqual(plan.alpha, m + r - 1)
                // With an even α the finite points (0, ±1, ±2, …) are symmetric: each p but 0 has its
                // mirror −p, so the transforms share work. (With an odd α the point set is not
                // symmetric and fewer or no rows pair; the results above must be right either way.)
                if plan.alpha % 2 == 0 { XCTAssertEqual(plan.pairedPositions, plan.alpha - 2, "F(\(m), \(r))") }
                let u = plan.transformKernel(kernel, inChannels: cin, outChannels: cout)
                let outShape = Shape(height: 13, width: width, channels: cout)
                let tiles = plan.tiles(outShape, batch: 2, alongWidth: true)
                var input = x.values
                var output = [Float](repeating: .nan, count: want.values.count)
                var workspace = [Float](repeating: 0, count: plan.scratch(tiles: plan.chunk(tiles: tiles, inChannels: cin, outChannels: cout),
                                                                           inChannels: cin, outChannels: cout))
                input.withUnsafeMutableBufferPointer { i in
                    output.withUnsafeMutableBufferPointer { o in
                        workspace.withUnsafeMutableBufferPointer { w in
                            plan.forward(TensorView(base: i.baseAddress!, shape: x.shape), TensorView(base: o.baseAddress!, shape: outShape),
                                         batch: 2, alongWidth: true, kernel: u, bias: nil, activation: .linear,
                                         padBefore: (r - 1) / 2, workspace: w.baseAddress!)
                        }
                    }
                }
                let worst = zip(output, want.values).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .nan
                XCTAssertLessThan(worst, 1e-4, "F(\(m), \(r))")
            }
        }
    }

    func testWritesIntoAChannelSlice() throws {
        try run(batch: 3, height: 21, width: 19, cin: 32, cout: 24, padding: .same, activation: .relu, threads: 2,
                outputStride: 11, seed: 99)
    }

    func testLayersLargerThanOneChunkRunInChunks() throws {
        let budget = Winograd.chunkBudget
        defer { Winograd.chunkBudget = budget }
        // 2 × 19×23 is 60 tiles; a budget of 7 tiles makes 9 chunks, the last one short.
        Winograd.chunkBudget = 7 * 36 * (13 + 17) + 13
        XCTAssertEqual(Winograd.chunk(tiles: 60, inChannels: 13, outChannels: 17), 7)
        try run(batch: 2, height: 19, width: 23, cin: 13, cout: 17, padding: .same, activation: .relu, threads: 2, seed: 7)
    }

    func testSmallLayersKeepTheDirectPath() throws {
        Winograd.minimumTiles = 48
        Winograd.minimumTilesPerImage = 24
        func conv(_ kh: Int, _ kw: Int, input: Int) -> Conv2D {
            let window = Window(kernelH: kh, kernelW: kw, strideH: 1, strideW: 1, padding: .same)
            var conv = Conv2D(window: window, inChannels: 16, outChannels: 16,
                              weights: Array(repeating: 0.1, count: kh * kw * 256), bias: nil, activation: .linear)
            conv.prepare(input: Shape(height: input, width: input, channels: 16))
            return conv
        }
        // 8×8 is 4 tiles of 4×4 (16 of 1×4): too thin for the products, so no transformed kernel is kept.
        XCTAssertNil(conv(3, 3, input: 8).winograd)
        XCTAssertNil(conv(1, 3, input: 8).winograd1D)
        XCTAssertFalse(conv(3, 3, input: 8).usesWinograd(Shape(height: 8, width: 8, channels: 16), batch: 16))
        // 35×35 (81 tiles) and 17×17 along one axis (85 tiles) run Winograd from batch 1.
        XCTAssertTrue(conv(3, 3, input: 35).usesWinograd(Shape(height: 35, width: 35, channels: 16), batch: 1))
        XCTAssertTrue(conv(7, 1, input: 17).usesWinograd1D(Shape(height: 17, width: 17, channels: 16), batch: 1))
        XCTAssertEqual(conv(1, 7, input: 17).winograd1D?.plan.alpha, 10, "F(4, 7)")
    }

    func testBatchNormFoldingRecomputesTheTransformedKernel() throws {
        let window = Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)
        var conv = Conv2D(window: window, inChannels: 8, outChannels: 8,
                          weights: Array(repeating: 1, count: 9 * 64), bias: nil, activation: .linear)
        conv.prepare(input: Shape(height: 16, width: 16, channels: 8))
        let before = try XCTUnwrap(conv.winograd)
        conv.weights = conv.weights.map { $0 * 2 }
        XCTAssertNotEqual(conv.winograd, before)
        XCTAssertEqual(conv.winograd, Winograd.transformKernel(conv.weights, inChannels: 8, outChannels: 8))
    }
}
