import Foundation
import Inception

/// Paths into `../shared` (beside the repository), which holds the model
/// fixtures, reference outputs and test photos.
enum SharedData {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static let inceptionWeights = path("models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5")
    static let inceptionRef = path("models/inception_v3/ref")
    static let mobileNet = path("models/mobilenet_v2/mobilenet_v2_1.0_224.h5")
    static let mnistLeNet = path("models/mnist_lenet/mnist_lenet.h5")
    static let imageNetLabels = path("data/image_net_labels.json")

    /// The reference images: name → path of the photo (relative to data/images).
    static let referenceImages: [(name: String, file: String)] = [
        ("cat", "cat.jpg"), ("0000", "0000.jpg"), ("0001", "0001.jpg"), ("0003", "0003.jpg"),
        ("0004", "0004.jpg"), ("0005", "0005.jpg"), ("0006", "0006.jpg"),
        ("cat_720p", "coral/cat_720p.jpg"), ("grace_hopper", "coral/grace_hopper.bmp"),
        ("hot_dog", "coral/hot_dog.jpg"), ("parrot", "coral/parrot.jpg"),
    ]

    static func image(_ file: String) throws -> [UInt8] {
        let p = path("data/images/\(file)")
        guard let data = FileManager.default.contents(atPath: p) else { throw ModelError("missing test image \(p)") }
        return [UInt8](data)
    }

    /// A raw little-endian float32 file.
    static func floats(_ path: String) throws -> [Float] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("missing reference file \(path)") }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    static func json(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError("cannot read JSON \(path)")
        }
        return object
    }

    /// Models are large; load each once per test process.
    nonisolated(unsafe) private static var cache: [String: Model] = [:]
    private static let lock = NSLock()
    static func model(_ path: String) throws -> Model {
        lock.lock(); defer { lock.unlock() }
        if let m = cache[path] { return m }
        let m = try Model(contentsOf: path)
        cache[path] = m
        return m
    }
}

/// Largest absolute difference between two arrays of one length.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Indices of the k largest values, best first.
func topIndices(_ values: [Float], _ k: Int) -> [Int] {
    Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
}
