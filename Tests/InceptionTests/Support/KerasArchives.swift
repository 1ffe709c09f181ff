import Foundation
import Inception

/// The quickstart fixtures (`shared/models/mnist_quickstart`), their
/// reference logits, and re-packed copies of the Keras 3 archive (made with
/// Python's `zipfile`, as Keras itself writes them).
enum Quickstart {
    static let folder = SharedData.path("models/mnist_quickstart")
    static let keras2 = "\(folder)/model.h5"
    static let keras3 = "\(folder)/model.keras"

    /// The first `count` MNIST test images, pixel / 255, 784 values each.
    static func images(_ count: Int) throws -> [[Float]] {
        let bytes = try gunzip(SharedData.path("data/mnist/idx/t10k-images-idx3-ubyte.gz"))
        return (0..<count).map { n in (0..<784).map { Float(bytes[16 + n * 784 + $0]) / 255 } }
    }

    /// TensorFlow's logits for the 20 reference images of `file` (reference.json or reference_keras3.json).
    static func referenceLogits(_ file: String) throws -> [[Float]] {
        let reference = try SharedData.json("\(folder)/\(file)")
        guard let logits = reference["logits"] as? [[Double]] else { throw ModelError("\(file) has no logits") }
        return logits.map { $0.map(Float.init) }
    }

    /// Copies the Keras 3 archive to a new file with
    /// `Tests/KerasFixtures/repack_keras.py`, every entry deflated or stored,
    /// after `edit` changes the parsed config.json. Returns the new file's path.
    static func repacked(deflate: Bool = false, edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-keras-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configPath = directory.appendingPathComponent("config.json").path
        let output = directory.appendingPathComponent("model.keras").path
        let zip = try ZipArchive(path: keras3)
        guard var config = try JSONSerialization.jsonObject(with: Data(try zip.contents(of: "config.json"))) as? [String: Any] else {
            throw ModelError("config.json is not an object")
        }
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("KerasFixtures/repack_keras.py").path
        _ = try run("/usr/bin/env", ["python3", script, keras3, output, "--config", configPath] + (deflate ? ["--deflate"] : []))
        return output
    }

    /// The layer list of a Keras 3 config.
    static func layers(_ config: [String: Any]) -> [[String: Any]] {
        (config["config"] as? [String: Any])?["layers"] as? [[String: Any]] ?? []
    }

    static func setLayers(_ config: inout [String: Any], _ layers: [[String: Any]]) {
        var inner = config["config"] as? [String: Any] ?? [:]
        inner["layers"] = layers
        config["config"] = inner
    }

    private static func gunzip(_ path: String) throws -> [UInt8] {
        [UInt8](try run("/bin/gzip", ["-dc", path]))
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ModelError("\(executable) \(arguments.first ?? "") failed") }
        return data
    }
}
