import ArgumentParser
import Foundation
import Inception

/// `conveyor classify IMAGE...`: the top-k classes of each image.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Classify JPEG images and print the top-k classes.")

    @Argument(help: "JPEG files.")
    var images: [String]

    @OptionGroup var engine: EngineOptions

    @Option(help: "Labels file: a JSON string array or one name per line (env CONVEYOR_LABELS; default: beside the model).")
    var labels: String?

    @Option(help: "How many classes to print.")
    var top: Int = 5

    @Option(help: "Refuse images with more pixels than this.")
    var maxPixels: Int = 40_000_000

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard top > 0 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        Engine.configure(threads: engine.threadCount)
        let path = try engine.modelPath
        let model = try Model(contentsOf: path)
        let names = try Labels.load(labels, forModel: path, classes: model.outputCount)
        let classifier = Classifier(model: model, labels: names, maxPixels: maxPixels)

        var failed = 0
        var report: [[String: Any]] = []
        for file in images {
            let result: Result<[Prediction], ImageError>
            if let data = FileManager.default.contents(atPath: file) {
                result = classifier.classify([[UInt8](data)], top: top)[0]
            } else {
                result = .failure(.corrupt("cannot read file"))
            }
            switch result {
            case .success(let predictions):
                if json {
                    report.append(["file": file, "top": predictions.map { ["index": $0.index, "label": $0.label, "score": Double($0.score)] }])
                } else {
                    print(file)
                    for (rank, p) in predictions.enumerated() {
                        let score = String(format: "%.4f", p.score)
                        print("  \(rank + 1). \(p.index.description.leftPad(4))  \(score)  \(p.label)")
                    }
                }
            case .failure(let error):
                failed += 1
                if json {
                    report.append(["file": file, "error": error.description])
                } else {
                    FileHandle.standardError.write(Data("\(file): \(error)\n".utf8))
                }
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
