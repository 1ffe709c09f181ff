import Foundation
import XCTest

/// TF Serving's REST API end to end: a model repository with InceptionV3,
/// MobileNetV2, two versions of LeNet and TensorFlow's quickstart model
/// (Keras 2 `.h5`, Keras 3 `.keras`, and a `.keras` with a layer Conveyor does
/// not have) served from one config file by a real `conveyor worker`, and
/// `conveyor ingress` answering `/v1/models/…` over a socket. Every
/// prediction goes through mosquitto and the worker.
final class TFServingAPITests: XCTestCase {
    /// One deployment for the whole class (loading three models takes a while).
    nonisolated(unsafe) private static var shared: (pipeline: Pipeline, repository: URL, rest: HTTPClient)?
    nonisolated(unsafe) static var ports: (rest: Int, grpc: Int) = (0, 0)
    private static let lock = NSLock()

    override class func tearDown() {
        shared?.pipeline.shutDown()
        shared?.pipeline.removeFiles()
        shared = nil
        super.tearDown()
    }

    func deployment() async throws -> (pipeline: Pipeline, repository: URL, rest: HTTPClient) {
        if let shared = Self.lock.withLock({ Self.shared }) { return shared }
        let pipeline = try Pipeline(name: "tfserving")
        let repository = pipeline.directory.appendingPathComponent("models", isDirectory: true)
        try Self.makeVersion(repository, "inception_v3", 1, model: Paths.model, labels: ("labels.json", Paths.labels))
        let mobilenet = Paths.shared.appendingPathComponent("models/mobilenet_v2")
        try Self.makeVersion(repository, "mobilenet_v2", 1, model: mobilenet.appendingPathComponent("mobilenet_v2_1.0_224.h5").path,
                             labels: ("labels.txt", mobilenet.appendingPathComponent("labels.txt").path))
        for version in [1, 2] {
            try Self.makeVersion(repository, "mnist", version, model: Self.lenet, labels: nil)
            try Self.makeVersion(repository, "mnist_reload", version, model: Self.lenet, labels: nil)
        }
        try Self.makeVersion(repository, "mnist_quickstart", 1, model: Self.quickstart("model.h5"), labels: nil)
        try Self.makeVersion(repository, "mnist_keras3", 1, model: Self.quickstart("model.keras"), labels: nil, file: "model.keras")
        let unsupported = pipeline.directory.appendingPathComponent("unsupported.keras").path
        try Self.archiveWithUnsupportedLayer(unsupported, in: pipeline.directory)
        try Self.makeVersion(repository, "mnist_unsupported", 1, model: unsupported, labels: nil, file: "model.keras")
        let config = repository.appendingPathComponent("models.config")
        try Data("""
        model_config_list {
          config { name: 'inception_v3' base_path: 'inception_v3' model_platform: 'tensorflow' }
          config {
            name: 'mobilenet_v2' base_path: 'mobilenet_v2' model_platform: 'tensorflow'
            model_version_policy { specific { versions: 1 } }
          }
          config {
            name: 'mnist' base_path: 'mnist' model_platform: 'tensorflow'
            model_version_policy { latest { num_versions: 2 } }
            version_labels { key: 'stable' value: 1 }
            version_labels { key: 'canary' value: 2 }
          }
          config {
            name: 'mnist_reload' base_path: 'mnist_reload'
            model_version_policy { latest { num_versions: 2 } }
            version_labels { key: 'stable' value: 1 }
          }
          config { name: 'mnist_quickstart' base_path: 'mnist_quickstart' model_platform: 'tensorflow' }
          config { name: 'mnist_keras3' base_path: 'mnist_keras3' model_platform: 'tensorflow' }
          config { name: 'mnist_unsupported' base_path: 'mnist_unsupported' model_platform: 'tensorflow' }
        }
        """.utf8).write(to: config)
        let restPort = try Ports.free()
        let grpcPort = try Ports.free()
        Self.ports = (restPort, grpcPort)
        try await pipeline.start(
            workers: ["worker-tfs"],
            workerArguments: ["--model-config-file", config.path, "--file-system-poll-seconds", "0.3"],
            ingresses: [.init(name: "ingress", extraArguments: ["--rest-port", String(restPort), "--grpc-port", String(grpcPort)])])
        let rest = HTTPClient(port: restPort)
        // The worker loads the versions after subscribing; wait for all eight, and the one it refuses.
        try await Self.waitFor("every version available", pipeline) {
            var available = 0
            for model in ["inception_v3", "mobilenet_v2", "mnist", "mnist_reload", "mnist_quickstart", "mnist_keras3"] {
                let reply = try await rest.get("/v1/models/\(model)")
                available += Self.states(reply).filter { $0.1 == "AVAILABLE" }.count
            }
            let refused = Self.states(try await rest.get("/v1/models/mnist_unsupported")).map(\.1) == ["END"]
            return available == 8 && refused
        }
        Self.lock.withLock { Self.shared = (pipeline, repository, rest) }
        return (pipeline, repository, rest)
    }

    static let lenet = Paths.shared.appendingPathComponent("models/mnist_lenet/mnist_lenet.h5").path

    static func makeVersion(_ repository: URL, _ model: String, _ version: Int, model file: String,
                            labels: (String, String)?, file name: String = "model.h5") throws {
        let folder = repository.appendingPathComponent("\(model)/\(version)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent(name).path, withDestinationPath: file)
        if let (name, path) = labels {
            try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent(name).path, withDestinationPath: path)
        }
    }

    /// (version, state) pairs of a status reply.
    static func states(_ reply: HTTPReply) -> [(String, String)] {
        guard reply.status == 200, let list = reply.object?["model_version_status"] as? [[String: Any]] else { return [] }
        return list.compactMap { entry in
            guard let v = entry["version"] as? String, let s = entry["state"] as? String else { return nil }
            return (v, s)
        }
    }

    static func waitFor(_ what: String, _ pipeline: Pipeline, timeout: TimeInterval = Pipeline.startTimeout,
                        _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw PipelineError("timed out waiting for \(what)\n\(pipeline.diagnostics())")
    }

    func post(_ rest: HTTPClient, _ path: String, _ json: Any) async throws -> HTTPReply {
        try await rest.post(path, body: try JSONSerialization.data(withJSONObject: json))
    }

    private func cat() throws -> (data: Data, label: String) {
        let reference = try XCTUnwrap(try TestImages.reference().first { $0.name == "cat" })
        return (try reference.data, try XCTUnwrap(reference.top5Labels.first))
    }

    // MARK: - Status and metadata

    func testStatusOfVersionsAndLabels() async throws {
        let (_, _, rest) = try await deployment()
        let all = Self.states(try await rest.get("/v1/models/mnist"))
        XCTAssertEqual(all.map(\.0), ["2", "1"])
        XCTAssertEqual(Set(all.map(\.1)), ["AVAILABLE"])
        let one = try await rest.get("/v1/models/mnist/versions/1")
        XCTAssertEqual(Self.states(one).map(\.0), ["1"], one.text)
        let status = try XCTUnwrap((one.object?["model_version_status"] as? [[String: Any]])?.first?["status"] as? [String: Any])
        XCTAssertEqual(status["error_code"] as? String, "OK")
        XCTAssertEqual(status["error_message"] as? String, "")
        let canary = try await rest.get("/v1/models/mnist/labels/canary")
        XCTAssertEqual(Self.states(canary).map(\.0), ["2"])
        let stable = try await rest.get("/V1/MODELS/mnist/LABELS/stable")
        XCTAssertEqual(Self.states(stable).map(\.0), ["1"], "keywords are case-insensitive")

        for (path, message) in [("/v1/models/nope", "Could not find any versions of model nope"),
                                ("/v1/models/mnist/versions/9", "Could not find version 9 of model mnist"),
                                ("/v1/models/mnist/labels/prod", "Unrecognized servable version label: prod"),
                                ("/v1/models/nope/metadata", "Servable not found for request: Latest(nope)")] {
            let reply = try await rest.get(path)
            XCTAssertEqual(reply.status, 404, "\(path): \(reply.text)")
            XCTAssertEqual(reply.errorMessage, message, path)
        }
    }

    func testMetadataDescribesEachSignature() async throws {
        let (pipeline, _, rest) = try await deployment()
        let reply = try await rest.get("/v1/models/inception_v3/metadata")
        XCTAssertEqual(reply.status, 200, reply.text)
        let spec = try XCTUnwrap(reply.object?["model_spec"] as? [String: Any])
        XCTAssertEqual(spec["name"] as? String, "inception_v3")
        XCTAssertEqual(spec["version"] as? String, "1")
        let defs = try XCTUnwrap(((reply.object?["metadata"] as? [String: Any])?["signature_def"] as? [String: Any])?["signature_def"] as? [String: Any])
        XCTAssertEqual(Set(defs.keys), ["serving_default", "scores", "classify"])
        let serving = try XCTUnwrap(defs["serving_default"] as? [String: Any])
        let image = try XCTUnwrap((serving["inputs"] as? [String: Any])?["image"] as? [String: Any])
        XCTAssertEqual(image["dtype"] as? String, "DT_STRING")
        XCTAssertNotNil((serving["outputs"] as? [String: Any])?["output_0"], "the book's output name")

        // LeNet, a Keras 2 model: the signature its SavedModel export has.
        let mnist = try await rest.get("/v1/models/mnist/versions/1/metadata")
        let mnistDefs = try XCTUnwrap(((mnist.object?["metadata"] as? [String: Any])?["signature_def"] as? [String: Any])?["signature_def"] as? [String: Any])
        XCTAssertEqual(Set(mnistDefs.keys), ["serving_default"])
        let input = try XCTUnwrap(((mnistDefs["serving_default"] as? [String: Any])?["inputs"] as? [String: Any])?["input"] as? [String: Any])
        XCTAssertEqual(input["dtype"] as? String, "DT_FLOAT")
        let dims = ((input["tensor_shape"] as? [String: Any])?["dim"] as? [[String: Any]])?.compactMap { $0["size"] as? String }
        XCTAssertEqual(dims, ["-1", "28", "28", "1"])
        XCTAssertNotNil(((mnistDefs["serving_default"] as? [String: Any])?["outputs"] as? [String: Any])?["fc2"])

        // The book's /metadata on the job API describes the same model.
        let book = try await pipeline.http.get("/metadata")
        XCTAssertEqual(((book.object?["model_spec"] as? [String: Any])?["name"] as? String), "inception_v3")
    }

    // MARK: - Predict and classify

    func testTheBooksColumnarRequestGetsTheLabel() async throws {
        let (_, _, rest) = try await deployment()
        let (image, label) = try cat()
        let urlSafe = image.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let reply = try await post(rest, "/v1/models/inception_v3:predict", ["inputs": ["image": [urlSafe]]])
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.object?["outputs"] as? [String], [label], reply.text)
    }

    func testRowFormWithB64AndTheScoresSignature() async throws {
        let (_, _, rest) = try await deployment()
        let (image, label) = try cat()
        let b64 = ["b64": image.base64EncodedString()]
        let rows = try await post(rest, "/v1/models/inception_v3/versions/1:predict", ["instances": [b64, b64]])
        XCTAssertEqual(rows.status, 200, rows.text)
        XCTAssertEqual(rows.object?["predictions"] as? [String], [label, label])

        let scores = try await post(rest, "/v1/models/inception_v3:predict",
                                    ["signature_name": "scores", "instances": [["image": b64]]])
        XCTAssertEqual(scores.status, 200, scores.text)
        let first = try XCTUnwrap((scores.object?["predictions"] as? [[String: Any]])?.first, scores.text)
        let classes = try XCTUnwrap(first["classes"] as? [String])
        let values = try XCTUnwrap(first["scores"] as? [Double])
        let reference = try XCTUnwrap(try TestImages.reference().first { $0.name == "cat" })
        XCTAssertEqual(classes, reference.top5Labels, "TensorFlow's top 5")
        XCTAssertEqual(values, values.sorted(by: >))
        XCTAssertGreaterThan(values[4], 0)

        let mobilenet = try await post(rest, "/v1/models/mobilenet_v2:predict", ["instances": [b64]])
        XCTAssertEqual(mobilenet.status, 200, mobilenet.text)
        XCTAssertEqual((mobilenet.object?["predictions"] as? [String])?.count, 1)
    }

    func testClassifyAnswersLabelsWithScores() async throws {
        let (_, _, rest) = try await deployment()
        let (image, label) = try cat()
        let reply = try await post(rest, "/v1/models/inception_v3:classify",
                                   ["examples": [["image": ["b64": image.base64EncodedString()]]]])
        XCTAssertEqual(reply.status, 200, reply.text)
        let result = try XCTUnwrap(reply.object?["result"] as? [[[Any]]], reply.text)
        XCTAssertEqual(result.count, 1)
        XCTAssertEqual(result[0].count, 5)
        XCTAssertEqual(result[0][0][0] as? String, label)
        XCTAssertNotNil(result[0][0][1] as? Double)
    }

    func testMNISTPredictReturnsTheRightClasses() async throws {
        let (_, _, rest) = try await deployment()
        let digits = try MNIST.first(12)
        let instances = digits.map(\.image)
        for path in ["/v1/models/mnist:predict", "/v1/models/mnist/labels/stable:predict"] {
            let reply = try await post(rest, path, ["signature_name": "serving_default", "instances": instances])
            XCTAssertEqual(reply.status, 200, "\(path): \(reply.text.prefix(300))")
            let predictions = try XCTUnwrap(reply.object?["predictions"] as? [[Double]], reply.text)
            XCTAssertEqual(predictions.count, digits.count)
            for (scores, digit) in zip(predictions, digits) {
                XCTAssertEqual(scores.count, 10)
                XCTAssertEqual(scores.indices.max { scores[$0] < scores[$1] }, digit.label)
                XCTAssertEqual(scores.reduce(0, +), 1, accuracy: 1e-3, "softmax scores")
            }
        }
        // Columnar form, the input named.
        let columnar = try await post(rest, "/v1/models/mnist:predict", ["inputs": ["input": [digits[0].image]]])
        XCTAssertEqual(columnar.status, 200, columnar.text)
        let scores = try XCTUnwrap((columnar.object?["outputs"] as? [[Double]])?.first, columnar.text)
        XCTAssertEqual(scores.indices.max { scores[$0] < scores[$1] }, digits[0].label)
        // A convolution reads LeNet's input: TensorFlow needs its 28×28×1 shape, and so does Conveyor.
        let flat = try await post(rest, "/v1/models/mnist:predict", ["instances": [digits[0].pixels.map(Double.init)]])
        XCTAssertEqual(flat.status, 400, flat.text)
        XCTAssertEqual(flat.errorMessage, "Input 'input' must be of shape [-1, 28, 28, 1], got [1, 784]")
    }

    // MARK: - Errors

    func testErrorsUseTFServingsCodesAndMessages() async throws {
        let (_, _, rest) = try await deployment()
        let cases: [(String, Data, Int, String)] = [
            ("/v1/models/nope:predict", Data(#"{"instances": [1]}"#.utf8), 404, "Servable not found for request: Latest(nope)"),
            ("/v1/models/mnist/versions/7:predict", Data(#"{"instances": [1]}"#.utf8), 404, "Servable not found for request: Specific(mnist, 7)"),
            ("/v1/models/mnist/labels/prod:predict", Data(#"{"instances": [1]}"#.utf8), 404, "Unrecognized servable version label: prod"),
            ("/v1/models/mnist:predict", Data("{not json".utf8), 400, "JSON Parse error"),
            ("/v1/models/mnist:predict", Data(#"{"instances": [[1, 2, 3]]}"#.utf8), 400, "must be of shape"),
            ("/v1/models/mnist:predict", Data(#"{"signature_name": "x", "instances": [[1]]}"#.utf8), 400, #"Serving signature name: "x" not found"#),
            ("/v1/models/inception_v3:predict", Data(#"{"instances": [{"b64": "***"}]}"#.utf8), 400, "Unable to base64 decode"),
            ("/v1/models/inception_v3:predict", Data(#"{"instances": [{"b64": "/9j/AAAA"}]}"#.utf8), 400, "bad image"),
            ("/v1/models/inception_v3:regress", Data(#"{"examples": []}"#.utf8), 501, "Regress is not supported"),
            ("/v1/models/inception_v3/metadata:predict", Data("{}".utf8), 400, "Malformed request"),
        ]
        for (path, body, status, message) in cases {
            let reply = try await rest.post(path, body: body)
            XCTAssertEqual(reply.status, status, "\(path): \(reply.text)")
            XCTAssertTrue(reply.errorMessage?.contains(message) == true, "\(path): \(reply.text)")
        }
        let huge = try await rest.post("/v1/models/inception_v3:predict", body: Data(count: 11 * 1024 * 1024))
        XCTAssertEqual(huge.status, 413, huge.text)
        // Still serving.
        let (image, label) = try cat()
        let ok = try await post(rest, "/v1/models/inception_v3:predict", ["instances": [["b64": image.base64EncodedString()]]])
        XCTAssertEqual(ok.object?["predictions"] as? [String], [label], ok.text)
    }

    // MARK: - TF Serving's own Python client

    /// TF Serving's Python client over a model repository: `tensorflow-serving-api`
    /// (gRPC) and `requests` (REST), from a venv made by `scripts/tf-serving-client-venv.sh`.
    func testTFServingsPythonClientOverGRPCAndREST() async throws {
        let (pipeline, _, _) = try await deployment()
        let venv = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/tf-serving-client-venv.sh").path, [], timeout: 900)
        XCTAssertEqual(venv.status, 0, "making the client venv failed:\n\(venv.output)")
        guard venv.status == 0, let python = venv.output.split(separator: "\n").last.map(String.init) else { return }
        let (_, label) = try cat()
        let run = try ProgramRun.run(python, [
            Paths.repo.appendingPathComponent("Tests/TFServingClient/tf_serving_client.py").path,
            "--host", "127.0.0.1", "--rest-port", String(Self.ports.rest), "--grpc-port", String(Self.ports.grpc),
            "--image", Paths.sampleImage, "--label", label,
            "--mnist-dir", Paths.shared.appendingPathComponent("data/mnist/idx").path,
        ], timeout: 300)
        XCTAssertEqual(run.status, 0, "TF Serving client:\n\(run.output)\n\(pipeline.diagnostics())")
        XCTAssertTrue(run.output.contains("tf serving client: all checks passed"), run.output)
    }

    /// `conveyor predict`, the book's client, over each front door.
    func testConveyorPredictOverEveryFormat() async throws {
        let (pipeline, _, _) = try await deployment()
        let (_, label) = try cat()
        let targets: [(String, String)] = [
            ("rest", "127.0.0.1:\(Self.ports.rest)"), ("grpc", "127.0.0.1:\(Self.ports.grpc)"),
            ("http-async", "127.0.0.1:\(try pipeline.ingress.port)"), ("mqtt", "127.0.0.1:\(pipeline.broker.port)"),
        ]
        for (format, target) in targets {
            let run = try ProgramRun.run(Paths.binary, ["predict", Paths.sampleImage, "--format", format, "--target", target,
                                                  "--timeout", "60"], timeout: 120)
            XCTAssertEqual(run.status, 0, "\(format): \(run.output)")
            XCTAssertEqual(run.output.split(separator: "\n").last.map(String.init), label, "\(format): \(run.output)")
        }
        let metadata = try ProgramRun.run(Paths.binary, ["predict", "--metadata", "--format", "grpc", "--model", "mnist",
                                                   "--target", "127.0.0.1:\(Self.ports.grpc)"], timeout: 60)
        XCTAssertEqual(metadata.status, 0, metadata.output)
        XCTAssertTrue(metadata.output.contains("serving_default") && metadata.output.contains("fc2"), metadata.output)
        let missing = try ProgramRun.run(Paths.binary, ["predict", Paths.sampleImage, "--model", "nope",
                                                  "--target", "127.0.0.1:\(Self.ports.rest)"], timeout: 60)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("Servable not found for request: Latest(nope)"), missing.output)
    }


    // MARK: - Hot reload

    func testANewVersionIsServedWithoutRestartAndDeletingItRollsBack() async throws {
        let (pipeline, repository, rest) = try await deployment()
        // latest { num_versions: 2 }: version 3 appears, version 1 leaves service.
        try Self.makeVersion(repository, "mnist_reload", 3, model: Self.lenet, labels: nil)
        defer { try? FileManager.default.removeItem(at: repository.appendingPathComponent("mnist_reload/3")) }
        try await Self.waitFor("version 3 available", pipeline, timeout: 60) {
            let states = Dictionary(Self.states(try await rest.get("/v1/models/mnist_reload")), uniquingKeysWith: { a, _ in a })
            return states["3"] == "AVAILABLE" && states["2"] == "AVAILABLE" && states["1"] == "END"
        }
        let digit = try MNIST.first(1)[0]
        let three = try await post(rest, "/v1/models/mnist_reload/versions/3:predict", ["instances": [digit.image]])
        XCTAssertEqual(three.status, 200, three.text)
        let stable = try await post(rest, "/v1/models/mnist_reload/labels/stable:predict", ["instances": [digit.image]])
        XCTAssertEqual(stable.status, 404, "label stable names version 1, which left service: \(stable.text)")

        // Deleting the newest version rolls back to the previous two.
        try FileManager.default.removeItem(at: repository.appendingPathComponent("mnist_reload/3"))
        try await Self.waitFor("rollback to versions 2 and 1", pipeline, timeout: 60) {
            let states = Dictionary(Self.states(try await rest.get("/v1/models/mnist_reload")), uniquingKeysWith: { a, _ in a })
            return states["3"] == "END" && states["2"] == "AVAILABLE" && states["1"] == "AVAILABLE"
        }
        let back = try await post(rest, "/v1/models/mnist_reload/labels/stable:predict", ["instances": [digit.image]])
        XCTAssertEqual(back.status, 200, back.text)

        // A version the `specific` policy does not name is not loaded.
        try Self.makeVersion(repository, "mobilenet_v2", 2, model: Self.lenet, labels: nil)
        defer { try? FileManager.default.removeItem(at: repository.appendingPathComponent("mobilenet_v2/2")) }
        try await Task.sleep(for: .seconds(2))
        let mobilenet = try await rest.get("/v1/models/mobilenet_v2")
        XCTAssertEqual(Self.states(mobilenet).map(\.0), ["1"])
    }
}

/// The first MNIST test digits (`shared/data/mnist/idx`) and their labels.
enum MNIST {
    struct Digit {
        var pixels: [UInt8]
        var label: Int

        /// The pixels as LeNet's input: 28 rows of 28 one-channel pixels, 0–255.
        var image: [[[Double]]] {
            (0..<28).map { row in (0..<28).map { column in [Double(pixels[row * 28 + column])] } }
        }
    }

    static func first(_ count: Int) throws -> [Digit] {
        let images = try gunzip(Paths.shared.appendingPathComponent("data/mnist/idx/t10k-images-idx3-ubyte.gz").path)
        let labels = try gunzip(Paths.shared.appendingPathComponent("data/mnist/idx/t10k-labels-idx1-ubyte.gz").path)
        return (0..<count).map { n in
            Digit(pixels: Array(images[(16 + n * 784)..<(16 + (n + 1) * 784)]), label: Int(labels[8 + n]))
        }
    }

    private static func gunzip(_ path: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw PipelineError("gzip -dc \(path) failed") }
        return [UInt8](data)
    }
}
