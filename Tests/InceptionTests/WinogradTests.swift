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

    override func setUp() {
        super.setUp()
        wasEnabled = Winograd.enabled
        minimumTiles = Winograd.minimumTiles
        Winograd.enabled = true
        Winograd.minimumTiles = 1
    }

    override func tearDown() {
        Parallel.threads = 1
        Winograd.enabled = wasEnabled
        Winograd.minimumTiles = minimumTiles
        super.tearDown()
    }

    private func run(batch: Int, height: Int, width: Int, cin: Int, cout: Int, padding: Padding,
                     activation: Activation, threads: Int, outputStride extra: Int = 0, seed: UInt64) throws {
        Parallel.threads = threads
        var g = SplitMix64(seed: seed)
        let x = NaiveTensor(batch: batch, height: height, width: width, channels: cin,
                            values: (0..<(batch * height * width * cin)).map { _ in g.float() })
        let kernel = (0..<(9 * cin * cout)).map { _ in g.float() * 0.3 }
        let bias = (0..<cout).map { _ in g.float() }
        let window = Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: padding)
        let conv = Conv2D(window: window, inChannels: cin, outChannels: cout, weights: kernel, bias: bias, activation: activation)
        XCTAssertNotNil(conv.winograd)
        let outShape = try conv.outputShape(for: [Shape(height: height, width: width, channels: cin)])
        XCTAssertTrue(conv.usesWinograd(outShape, batch: batch), "the Winograd path should be taken")
        let expected = Naive.conv2d(x, kernel: kernel, kh: 3, kw: 3, outChannels: cout, bias: bias, same: padding == .same,
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
        XCTAssertLessThan(worst, 1e-4, "\(batch)×\(height)×\(width)×\(cin)→\(cout) \(padding) \(activation) threads \(threads)")
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
        let window = Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)
        let conv = Conv2D(window: window, inChannels: 16, outChannels: 16,
                          weights: Array(repeating: 0.1, count: 9 * 256), bias: nil, activation: .linear)
        // 8×8 at batch 1 is 4 tiles: too thin for 36 products.
        XCTAssertFalse(conv.usesWinograd(Shape(height: 8, width: 8, channels: 16), batch: 1))
        XCTAssertTrue(conv.usesWinograd(Shape(height: 35, width: 35, channels: 16), batch: 1))
    }

    func testBatchNormFoldingRecomputesTheTransformedKernel() throws {
        let window = Window(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padding: .same)
        var conv = Conv2D(window: window, inChannels: 8, outChannels: 8,
                          weights: Array(repeating: 1, count: 9 * 64), bias: nil, activation: .linear)
        let before = conv.winograd
        for i in conv.weights.indices { conv.weights[i] *= 2 }
        XCTAssertNotEqual(conv.winograd, before)
        XCTAssertEqual(conv.winograd, Winograd.transformKernel(conv.weights, inChannels: 8, outChannels: 8))
    }
}
