import Foundation

/// JPEG bytes in, top-k classes out: a model, its preprocessing, its labels
/// and one session. Not thread-safe (it owns a session and buffers); make one
/// per thread. Runs synchronously on the caller's thread: call it from a
/// thread of your own, not from Swift's cooperative pool.
public final class Classifier {
    public let model: Model
    public let labels: Labels
    /// nil when the model does not take images (see ``Model/takesImages``).
    public let preprocessor: ImagePreprocessor?
    private let session: Session
    private var input: [Float] = []
    private var output: [Float] = []

    public init(model: Model, labels: Labels? = nil, maxPixels: Int = 40_000_000) {
        self.model = model
        self.labels = labels ?? .indices(model.outputCount)
        let s = model.inputShape
        preprocessor = model.takesImages
            ? ImagePreprocessor(width: s.width, height: s.height, channels: s.channels, mode: model.preprocessing, maxPixels: maxPixels)
            : nil
        session = model.makeSession()
    }

    /// Decodes and classifies a batch of JPEG images. An image that cannot be
    /// decoded gets its error in its slot; the others still run. A model
    /// that does not take images answers each with `.notAnImageModel`.
    public func classify(_ images: [[UInt8]], top k: Int = 5) -> [Result<[Prediction], ImageError>] {
        guard let preprocessor else { return images.map { _ in .failure(.notAnImageModel(inputShape: model.inputDims)) } }
        let per = model.inputShape.count
        var results = [Result<[Prediction], ImageError>?](repeating: nil, count: images.count)
        var good: [Int] = []
        if input.count < images.count * per { input = [Float](repeating: 0, count: images.count * per) }
        input.withUnsafeMutableBufferPointer { buffer in
            for (i, image) in images.enumerated() {
                do throws(ImageError) {
                    try preprocessor.prepare(image, into: buffer.baseAddress! + good.count * per)
                    good.append(i)
                } catch {
                    results[i] = .failure(error)
                }
            }
        }
        for (slot, scores) in run(batch: good.count).enumerated() {
            results[good[slot]] = .success(Prediction.top(k, of: scores, labels: labels))
        }
        return results.map { $0! }
    }

    /// Classifies already-preprocessed model inputs (batch × input count floats).
    public func classify(tensors: [Float], batch: Int, top k: Int = 5) -> [[Prediction]] {
        precondition(tensors.count == batch * model.inputShape.count)
        input = tensors
        return run(batch: batch).map { Prediction.top(k, of: $0, labels: labels) }
    }

    private func run(batch: Int) -> [[Float]] {
        guard batch > 0 else { return [] }
        let classes = model.outputCount
        if output.count < batch * classes { output = [Float](repeating: 0, count: batch * classes) }
        input.withUnsafeBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                session.run(input: i.baseAddress!, batch: batch, output: o.baseAddress!)
            }
        }
        return (0..<batch).map { Array(output[($0 * classes)..<(($0 + 1) * classes)]) }
    }
}
