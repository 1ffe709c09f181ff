import Foundation
import Inception
import XCTest

/// Full-model Keras files: MobileNetV2 (real ImageNet weights) and LeNet (real MNIST weights).
final class OtherModelTests: XCTestCase {
    func testMobileNetV2TopOneMatchesTheFloatModelOnEveryPhoto() throws {
        let model = try SharedData.model(SharedData.mobileNet)
        XCTAssertEqual(model.inputShape, Shape(height: 224, width: 224, channels: 3))
        XCTAssertEqual(model.outputCount, 1001)
        XCTAssertEqual(model.preprocessing, .mobilenet)
        let labels = try Labels(contentsOf: SharedData.path("models/mobilenet_v2/labels.txt"), classes: 1001)
        let classifier = Classifier(model: model, labels: labels)
        let reference = try SharedData.json(SharedData.path("models/mobilenet_v2/reference.json"))
        let images = try XCTUnwrap(reference["images"] as? [String: [String: Any]])
        var checked = 0
        for (name, info) in images {
            guard let file = info["file"] as? String, file.hasSuffix(".jpg") else { continue }
            let want = try XCTUnwrap((info["float_top5"] as? [Int])?.first)
            let got = try classifier.classify([try SharedData.image(file)], top: 5)[0].get()
            XCTAssertEqual(got.first?.index, want, "\(name): top-1 \(got.first?.label ?? "-")")
            // The full 1001-vector against the float model's.
            let wantProbs = try SharedData.floats(SharedData.path("models/mobilenet_v2/ref/\(name).probs.f32"))
            XCTAssertEqual(got.first?.score ?? 0, wantProbs[want], accuracy: 0.02, "\(name)")
            checked += 1
        }
        XCTAssertEqual(checked, 10)
        let cat = try classifier.classify([try SharedData.image("cat.jpg")], top: 1)[0].get()
        XCTAssertEqual(cat.first?.label, "Persian cat")
    }

    func testMobileNetV2FromExactInputMatchesReferenceProbabilities() throws {
        let model = try SharedData.model(SharedData.mobileNet)
        for name in ["cat", "cat_720p", "hot_dog", "parrot"] {
            guard let u8 = FileManager.default.contents(atPath: SharedData.path("models/mobilenet_v2/ref/\(name).input.u8")) else {
                return XCTFail("missing \(name).input.u8")
            }
            let input = u8.map { (Float($0) - 128) / 128 }
            let probs = model.predict(input, batch: 1)
            let want = try SharedData.floats(SharedData.path("models/mobilenet_v2/ref/\(name).probs.f32"))
            XCTAssertLessThan(maxAbsDiff(probs, want), 1e-4, name)
        }
    }

    func testLeNetReachesTheReferenceAccuracyOnTheMNISTTestSet() throws {
        let model = try SharedData.model(SharedData.mnistLeNet)
        XCTAssertEqual(model.inputShape, Shape(height: 28, width: 28, channels: 1))
        XCTAssertEqual(model.outputCount, 10)
        let images = try gunzip(SharedData.path("data/mnist/idx/t10k-images-idx3-ubyte.gz"))
        let labels = try gunzip(SharedData.path("data/mnist/idx/t10k-labels-idx1-ubyte.gz"))
        XCTAssertEqual(images.count, 16 + 10_000 * 784)
        XCTAssertEqual(labels.count, 8 + 10_000)
        let session = model.makeSession()
        let batch = 500
        var correct = 0
        var input = [Float](repeating: 0, count: batch * 784)
        var output = [Float](repeating: 0, count: batch * 10)
        for start in stride(from: 0, to: 10_000, by: batch) {
            for i in 0..<(batch * 784) { input[i] = Float(images[16 + start * 784 + i]) }
            input.withUnsafeBufferPointer { i in
                output.withUnsafeMutableBufferPointer { o in session.run(input: i.baseAddress!, batch: batch, output: o.baseAddress!) }
            }
            for n in 0..<batch {
                let scores = Array(output[(n * 10)..<(n * 10 + 10)])
                if topIndices(scores, 1)[0] == Int(labels[8 + start + n]) { correct += 1 }
            }
        }
        let accuracy = Double(correct) / 10_000
        XCTAssertGreaterThanOrEqual(accuracy, 0.992, "accuracy \(accuracy)")
    }

    func testLeNetMatchesReferenceProbabilitiesForTheFirstImages() throws {
        let model = try SharedData.model(SharedData.mnistLeNet)
        let reference = try SharedData.json(SharedData.path("models/mnist_lenet/reference.json"))
        let images = try gunzip(SharedData.path("data/mnist/idx/t10k-images-idx3-ubyte.gz"))
        guard let first = reference["first_20"] as? [[String: Any]] ?? reference["first20"] as? [[String: Any]] else {
            return XCTFail("reference.json keys: \(reference.keys.sorted())")
        }
        for (n, entry) in first.enumerated() {
            let input = (0..<784).map { Float(images[16 + n * 784 + $0]) }
            let probs = model.predict(input, batch: 1)
            let want = try XCTUnwrap(entry["probs"] as? [Double]).map(Float.init)
            XCTAssertLessThan(maxAbsDiff(probs, want), 1e-4, "image \(n)")
        }
    }

    private func gunzip(_ path: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ModelError("gzip -dc \(path) failed") }
        return [UInt8](data)
    }
}
