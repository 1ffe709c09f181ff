/// One class of a top-k answer.
public struct Prediction: Sendable, Equatable, Codable {
    /// Class index in the model's output.
    public var index: Int
    /// Class name.
    public var label: String
    /// The model's output for the class (a probability for softmax models).
    public var score: Float

    public init(index: Int, label: String, score: Float) {
        self.index = index
        self.label = label
        self.score = score
    }

    /// The `k` highest scores, best first; ties go to the lower index.
    public static func top(_ k: Int, of scores: UnsafeBufferPointer<Float>, labels: Labels) -> [Prediction] {
        var best: [(Int, Float)] = []
        best.reserveCapacity(k + 1)
        for (i, s) in scores.enumerated() {
            if best.count == k, let last = best.last, !(s > last.1) { continue }
            let at = best.firstIndex { s > $0.1 } ?? best.count
            best.insert((i, s), at: at)
            if best.count > k { best.removeLast() }
        }
        return best.map { Prediction(index: $0.0, label: labels[$0.0], score: $0.1) }
    }

    public static func top(_ k: Int, of scores: [Float], labels: Labels) -> [Prediction] {
        scores.withUnsafeBufferPointer { top(k, of: $0, labels: labels) }
    }
}
