import Foundation
import Inception

// Deliberately simple reference implementations of the engine's layers, used
// only by tests. Plain NHWC `[Float]` arrays, explicit loops, sums in Double,
// no BLAS, no im2col, nothing shared with the engine's code (the padding
// arithmetic is written out again here rather than taken from `Padding`).

/// A batch of NHWC images as one dense array.
struct NaiveTensor: Equatable {
    var batch: Int
    var height: Int
    var width: Int
    var channels: Int
    var values: [Float]

    init(batch: Int, height: Int, width: Int, channels: Int, values: [Float]) {
        precondition(values.count == batch * height * width * channels, "NaiveTensor: wrong value count")
        self.batch = batch
        self.height = height
        self.width = width
        self.channels = channels
        self.values = values
    }

    init(batch: Int, height: Int, width: Int, channels: Int, repeating value: Float = 0) {
        self.init(batch: batch, height: height, width: width, channels: channels,
                  values: Array(repeating: value, count: batch * height * width * channels))
    }

    /// The shape of one image, in the engine's terms.
    var shape: Shape { Shape(height: height, width: width, channels: channels) }

    @inline(__always)
    func index(_ n: Int, _ y: Int, _ x: Int, _ c: Int) -> Int {
        ((n * height + y) * width + x) * channels + c
    }

    subscript(n: Int, y: Int, x: Int, c: Int) -> Float {
        get { values[index(n, y, x, c)] }
        set { values[index(n, y, x, c)] = newValue }
    }

    /// Image `n` alone, as a batch of one.
    func image(_ n: Int) -> NaiveTensor {
        let per = height * width * channels
        return NaiveTensor(batch: 1, height: height, width: width, channels: channels,
                           values: Array(values[(n * per)..<((n + 1) * per)]))
    }
}

enum Naive {
    /// Padding the TensorFlow way, for one axis: `same` gives ceil(in/stride)
    /// outputs and pads max((out-1)*stride + k - in, 0) in total, the smaller
    /// half before; `valid` gives floor((in-k)/stride)+1 outputs and no padding.
    static func axis(input: Int, kernel: Int, stride: Int, same: Bool) -> (output: Int, padBefore: Int) {
        if same {
            var output = input / stride
            if output * stride < input { output += 1 }
            let total = max((output - 1) * stride + kernel - input, 0)
            return (output, total / 2)
        }
        if input < kernel { return (0, 0) }
        return ((input - kernel) / stride + 1, 0)
    }

    static func activate(_ v: Float, _ activation: Activation) -> Float {
        switch activation {
        case .linear: return v
        case .relu: return v > 0 ? v : 0
        case .relu6: return v < 0 ? 0 : (v > 6 ? 6 : v)
        }
    }

    static func activate(_ x: NaiveTensor, _ activation: Activation) -> NaiveTensor {
        var y = x
        for i in 0..<y.values.count { y.values[i] = activate(y.values[i], activation) }
        return y
    }

    static func relu(_ x: NaiveTensor) -> NaiveTensor { activate(x, .relu) }
    static func relu6(_ x: NaiveTensor) -> NaiveTensor { activate(x, .relu6) }

    /// 2-D convolution. `kernel` is [kh][kw][in][out] (Keras's layout).
    static func conv2d(_ x: NaiveTensor, kernel: [Float], kh: Int, kw: Int, outChannels: Int,
                       bias: [Float]? = nil, strideH: Int = 1, strideW: Int = 1, same: Bool,
                       activation: Activation = .linear) -> NaiveTensor {
        let cin = x.channels
        precondition(kernel.count == kh * kw * cin * outChannels)
        let v = axis(input: x.height, kernel: kh, stride: strideH, same: same)
        let h = axis(input: x.width, kernel: kw, stride: strideW, same: same)
        var y = NaiveTensor(batch: x.batch, height: v.output, width: h.output, channels: outChannels)
        for n in 0..<x.batch {
            for oy in 0..<v.output {
                for ox in 0..<h.output {
                    for o in 0..<outChannels {
                        var sum: Double = 0
                        for ky in 0..<kh {
                            let iy = oy * strideH + ky - v.padBefore
                            if iy < 0 || iy >= x.height { continue }
                            for kx in 0..<kw {
                                let ix = ox * strideW + kx - h.padBefore
                                if ix < 0 || ix >= x.width { continue }
                                for c in 0..<cin {
                                    let w = kernel[((ky * kw + kx) * cin + c) * outChannels + o]
                                    sum += Double(x[n, iy, ix, c]) * Double(w)
                                }
                            }
                        }
                        if let bias { sum += Double(bias[o]) }
                        y[n, oy, ox, o] = activate(Float(sum), activation)
                    }
                }
            }
        }
        return y
    }

    /// Depthwise 2-D convolution. `kernel` is [kh][kw][C][multiplier]; output
    /// channel c*multiplier+m reads input channel c.
    static func depthwiseConv2d(_ x: NaiveTensor, kernel: [Float], kh: Int, kw: Int, multiplier: Int,
                                bias: [Float]? = nil, strideH: Int = 1, strideW: Int = 1, same: Bool,
                                activation: Activation = .linear) -> NaiveTensor {
        let cin = x.channels
        precondition(kernel.count == kh * kw * cin * multiplier)
        let v = axis(input: x.height, kernel: kh, stride: strideH, same: same)
        let h = axis(input: x.width, kernel: kw, stride: strideW, same: same)
        var y = NaiveTensor(batch: x.batch, height: v.output, width: h.output, channels: cin * multiplier)
        for n in 0..<x.batch {
            for oy in 0..<v.output {
                for ox in 0..<h.output {
                    for c in 0..<cin {
                        for m in 0..<multiplier {
                            var sum: Double = 0
                            for ky in 0..<kh {
                                let iy = oy * strideH + ky - v.padBefore
                                if iy < 0 || iy >= x.height { continue }
                                for kx in 0..<kw {
                                    let ix = ox * strideW + kx - h.padBefore
                                    if ix < 0 || ix >= x.width { continue }
                                    let w = kernel[((ky * kw + kx) * cin + c) * multiplier + m]
                                    sum += Double(x[n, iy, ix, c]) * Double(w)
                                }
                            }
                            if let bias { sum += Double(bias[c * multiplier + m]) }
                            y[n, oy, ox, c * multiplier + m] = activate(Float(sum), activation)
                        }
                    }
                }
            }
        }
        return y
    }

    /// Max pooling; padded positions are ignored.
    static func maxPool(_ x: NaiveTensor, kh: Int, kw: Int, strideH: Int, strideW: Int, same: Bool) -> NaiveTensor {
        pool(x, kh: kh, kw: kw, strideH: strideH, strideW: strideW, same: same, average: false)
    }

    /// Average pooling; the mean of the real pixels under the window only.
    static func averagePool(_ x: NaiveTensor, kh: Int, kw: Int, strideH: Int, strideW: Int, same: Bool) -> NaiveTensor {
        pool(x, kh: kh, kw: kw, strideH: strideH, strideW: strideW, same: same, average: true)
    }

    private static func pool(_ x: NaiveTensor, kh: Int, kw: Int, strideH: Int, strideW: Int,
                             same: Bool, average: Bool) -> NaiveTensor {
        let v = axis(input: x.height, kernel: kh, stride: strideH, same: same)
        let h = axis(input: x.width, kernel: kw, stride: strideW, same: same)
        var y = NaiveTensor(batch: x.batch, height: v.output, width: h.output, channels: x.channels)
        for n in 0..<x.batch {
            for oy in 0..<v.output {
                for ox in 0..<h.output {
                    for c in 0..<x.channels {
                        var best = -Float.infinity
                        var sum: Double = 0
                        var count = 0
                        for ky in 0..<kh {
                            let iy = oy * strideH + ky - v.padBefore
                            if iy < 0 || iy >= x.height { continue }
                            for kx in 0..<kw {
                                let ix = ox * strideW + kx - h.padBefore
                                if ix < 0 || ix >= x.width { continue }
                                let value = x[n, iy, ix, c]
                                best = max(best, value)
                                sum += Double(value)
                                count += 1
                            }
                        }
                        y[n, oy, ox, c] = average ? Float(sum / Double(count)) : best
                    }
                }
            }
        }
        return y
    }

    /// Mean over height and width: a batch of 1×1×C.
    static func globalAveragePool(_ x: NaiveTensor) -> NaiveTensor {
        var y = NaiveTensor(batch: x.batch, height: 1, width: 1, channels: x.channels)
        for n in 0..<x.batch {
            for c in 0..<x.channels {
                var sum: Double = 0
                for yy in 0..<x.height { for xx in 0..<x.width { sum += Double(x[n, yy, xx, c]) } }
                y[n, 0, 0, c] = Float(sum / Double(x.height * x.width))
            }
        }
        return y
    }

    /// Fully connected over each image's flattened HWC values. `kernel` is [inputs][units].
    static func dense(_ x: NaiveTensor, kernel: [Float], units: Int, bias: [Float]? = nil,
                      activation: Activation = .linear) -> NaiveTensor {
        let inputs = x.height * x.width * x.channels
        precondition(kernel.count == inputs * units)
        var y = NaiveTensor(batch: x.batch, height: 1, width: 1, channels: units)
        for n in 0..<x.batch {
            for u in 0..<units {
                var sum: Double = 0
                for i in 0..<inputs {
                    sum += Double(x.values[n * inputs + i]) * Double(kernel[i * units + u])
                }
                if let bias { sum += Double(bias[u]) }
                y[n, 0, 0, u] = activate(Float(sum), activation)
            }
        }
        return y
    }

    /// Softmax over the channels of every pixel.
    static func softmax(_ x: NaiveTensor) -> NaiveTensor {
        var y = x
        let c = x.channels
        for start in stride(from: 0, to: x.values.count, by: c) {
            var top = -Double.infinity
            for k in 0..<c { top = max(top, Double(x.values[start + k])) }
            var sum: Double = 0
            for k in 0..<c { sum += exp(Double(x.values[start + k]) - top) }
            for k in 0..<c { y.values[start + k] = Float(exp(Double(x.values[start + k]) - top) / sum) }
        }
        return y
    }

    /// y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
    static func batchNorm(_ x: NaiveTensor, gamma: [Float]?, beta: [Float]?, mean: [Float], variance: [Float],
                          epsilon: Float) -> NaiveTensor {
        var y = x
        let c = x.channels
        for i in 0..<x.values.count {
            let k = i % c
            let normalised = (Double(x.values[i]) - Double(mean[k])) / (Double(variance[k]) + Double(epsilon)).squareRoot()
            y.values[i] = Float(normalised * Double(gamma?[k] ?? 1) + Double(beta?[k] ?? 0))
        }
        return y
    }

    /// y = x * scale + shift, per channel.
    static func channelAffine(_ x: NaiveTensor, scale: [Float], shift: [Float]) -> NaiveTensor {
        var y = x
        for i in 0..<x.values.count {
            let k = i % x.channels
            y.values[i] = Float(Double(x.values[i]) * Double(scale[k]) + Double(shift[k]))
        }
        return y
    }

    /// Element-wise sum of tensors of one shape.
    static func add(_ xs: [NaiveTensor]) -> NaiveTensor {
        var y = xs[0]
        for i in 0..<y.values.count {
            var sum: Double = 0
            for x in xs {
                precondition(x.values.count == y.values.count)
                sum += Double(x.values[i])
            }
            y.values[i] = Float(sum)
        }
        return y
    }

    /// Concatenation along channels.
    static func concatenate(_ xs: [NaiveTensor]) -> NaiveTensor {
        let first = xs[0]
        let total = xs.reduce(0) { $0 + $1.channels }
        var y = NaiveTensor(batch: first.batch, height: first.height, width: first.width, channels: total)
        for n in 0..<first.batch {
            for yy in 0..<first.height {
                for xx in 0..<first.width {
                    var offset = 0
                    for x in xs {
                        precondition(x.batch == first.batch && x.height == first.height && x.width == first.width)
                        for c in 0..<x.channels { y[n, yy, xx, offset + c] = x[n, yy, xx, c] }
                        offset += x.channels
                    }
                }
            }
        }
        return y
    }

    /// ZeroPadding2D.
    static func zeroPadding(_ x: NaiveTensor, top: Int, bottom: Int, left: Int, right: Int) -> NaiveTensor {
        var y = NaiveTensor(batch: x.batch, height: x.height + top + bottom, width: x.width + left + right,
                            channels: x.channels)
        for n in 0..<x.batch {
            for yy in 0..<x.height {
                for xx in 0..<x.width {
                    for c in 0..<x.channels { y[n, yy + top, xx + left, c] = x[n, yy, xx, c] }
                }
            }
        }
        return y
    }
}
