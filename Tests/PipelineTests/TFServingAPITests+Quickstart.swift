import Foundation
import Inception
import XCTest

/// The gRPC tutorial's model, TensorFlow's quickstart (Flatten(28×28) →
/// Dense(128, relu) → Dropout → Dense(10) logits), served from the
/// tutorial's `model.h5` (tf_keras) as `mnist_quickstart` and from a Keras 3
/// `.keras` archive as `mnist_keras3`, through the whole pipeline.
extension TFServingAPITests {
    static func quickstart(_ file: String) -> String {
        Paths.shared.appendingPathComponent("models/mnist_quickstart/\(file)").path
    }

    /// The Keras 3 fixture with its Dropout layer's class changed to one
    /// Conveyor does not have (config.json rewritten, weights as they were).
    static func archiveWithUnsupportedLayer(_ path: String, in directory: URL) throws {
        let zip = try ZipArchive(path: quickstart("model.keras"))
        guard var config = try JSONSerialization.jsonObject(with: Data(try zip.contents(of: "config.json"))) as? [String: Any],
              var inner = config["config"] as? [String: Any], var layers = inner["layers"] as? [[String: Any]] else {
            throw PipelineError("the fixture's config.json has no layer list")
        }
        layers[3]["class_name"] = "LayerNormalization"
        inner["layers"] = layers
        config["config"] = inner
        let configPath = directory.appendingPathComponent("unsupported-config.json")
        try JSONSerialization.data(withJSONObject: config).write(to: configPath)
        let script = Paths.repo.appendingPathComponent("Tests/KerasFixtures/repack_keras.py").path
        let run = try ProgramRun.run("/usr/bin/env", ["python3", script, quickstart("model.keras"), path, "--config", configPath.path])
        guard run.status == 0 else { throw PipelineError("repack_keras.py failed: \(run.output)") }
    }

    /// The first 20 MNIST test images as the quickstart takes them (pixel / 255, 28 rows of 28).
    private func images() throws -> [[[Double]]] {
        try MNIST.first(20).map { digit in
            (0..<28).map { row in (0..<28).map { Double(digit.pixels[row * 28 + $0]) / 255 } }
        }
    }

    private func reference(_ file: String) throws -> [[Double]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.quickstart(file)))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(json["logits"] as? [[Double]])
    }

    private func maxAbsDiff(_ got: [[Double]], _ want: [[Double]]) -> Double {
        guard got.count == want.count, zip(got, want).allSatisfy({ $0.count == $1.count }) else { return .infinity }
        return zip(got, want).flatMap { zip($0, $1).map { abs($0 - $1) } }.max() ?? .infinity
    }

    private func signatureDefs(_ reply: HTTPReply) -> [String: Any]? {
        ((reply.object?["metadata"] as? [String: Any])?["signature_def"] as? [String: Any])?["signature_def"] as? [String: Any]
    }

    private static func tensorInfo(_ dims: [Int], _ name: String) -> [String: Any] {
        ["dtype": "DT_FLOAT", "name": name,
         "tensor_shape": ["dim": dims.map { ["size": String($0), "name": ""] }, "unknown_rank": false]]
    }

    func testTheQuickstartsMetadataIsTheTutorials() async throws {
        let (_, _, rest) = try await deployment()
        let reply = try await rest.get("/v1/models/mnist_quickstart/metadata")
        XCTAssertEqual(reply.status, 200, reply.text)
        // What the tutorial shows TF Serving answering for this model.
        let tutorial: [String: Any] = ["serving_default": [
            "inputs": ["flatten_input": Self.tensorInfo([-1, 28, 28], "flatten_input:0")],
            "outputs": ["dense_1": Self.tensorInfo([-1, 10], "dense_1:0")],
            "method_name": "tensorflow/serving/predict",
        ]]
        XCTAssertEqual(signatureDefs(reply) as NSDictionary?, tutorial as NSDictionary, reply.text)

        // The Keras 3 archive: what Keras 3's own export has (`serve` and `serving_default` alike).
        let keras3 = try await rest.get("/v1/models/mnist_keras3/metadata")
        let signature: [String: Any] = [
            "inputs": ["input_layer": Self.tensorInfo([-1, 28, 28], "input_layer:0")],
            "outputs": ["output_0": Self.tensorInfo([-1, 10], "output_0:0")],
            "method_name": "tensorflow/serving/predict",
        ]
        XCTAssertEqual(signatureDefs(keras3) as NSDictionary?, ["serve": signature, "serving_default": signature] as NSDictionary, keras3.text)
    }

    func testQuickstartLogitsOverRESTInBothForms() async throws {
        let (_, _, rest) = try await deployment()
        let images = try images()
        for (model, input, file) in [("mnist_quickstart", "flatten_input", "reference.json"),
                                     ("mnist_keras3", "input_layer", "reference_keras3.json")] {
            let want = try reference(file)
            let rows = try await post(rest, "/v1/models/\(model):predict", ["instances": images])
            XCTAssertEqual(rows.status, 200, "\(model): \(rows.text.prefix(300))")
            let predictions = try XCTUnwrap(rows.object?["predictions"] as? [[Double]], rows.text)
            let rowDiff = maxAbsDiff(predictions, want)
            XCTAssertLessThanOrEqual(rowDiff, 1e-4, "\(model) row form")

            let columns = try await post(rest, "/v1/models/\(model):predict", ["inputs": [input: images]])
            XCTAssertEqual(columns.status, 200, "\(model): \(columns.text.prefix(300))")
            let outputs = try XCTUnwrap(columns.object?["outputs"] as? [[Double]], columns.text)
            let columnDiff = maxAbsDiff(outputs, want)
            XCTAssertLessThanOrEqual(columnDiff, 1e-4, "\(model) columnar form")
            print("REST \(model): max abs diff \(rowDiff) (instances), \(columnDiff) (inputs)")

            // Logits stay logits: no softmax is added.
            XCTAssertTrue(predictions.contains { $0.contains { $0 < 0 } })
        }
    }

    /// The tutorial's REST body, `{"inputs": [...784 values...]}`: TF Serving
    /// parses it as a [784] tensor and feeds it to the exported graph as is.
    /// tf_keras's Flatten reshapes to [-1, 784], so the Keras 2 export
    /// answers one example; Keras 3's reshapes to [784, 784] and fails.
    func testTheTutorialsFlatBodyIsTakenAsTensorFlowTakesIt() async throws {
        let (_, _, rest) = try await deployment()
        let flat = try images()[0].flatMap { $0 }
        XCTAssertEqual(flat.count, 784)
        let want = try reference("reference.json")[0]
        let columnar = try await post(rest, "/v1/models/mnist_quickstart:predict", ["inputs": flat])
        XCTAssertEqual(columnar.status, 200, columnar.text)
        let outputs = try XCTUnwrap(columnar.object?["outputs"] as? [[Double]], columnar.text)
        XCTAssertLessThanOrEqual(maxAbsDiff(outputs, [want]), 1e-4)
        let rows = try await post(rest, "/v1/models/mnist_quickstart:predict", ["instances": flat])
        XCTAssertEqual(rows.status, 200, rows.text)
        XCTAssertLessThanOrEqual(maxAbsDiff(try XCTUnwrap(rows.object?["predictions"] as? [[Double]]), [want]), 1e-4)

        let keras3 = try await post(rest, "/v1/models/mnist_keras3:predict", ["inputs": flat])
        XCTAssertEqual(keras3.status, 400, keras3.text)
        XCTAssertEqual(keras3.errorMessage, "Input to reshape is a tensor with 784 values, but the requested shape has 614656")
        let short = try await post(rest, "/v1/models/mnist_quickstart:predict", ["inputs": Array(flat.prefix(783))])
        XCTAssertEqual(short.status, 400, short.text)
        XCTAssertEqual(short.errorMessage, "Input to reshape is a tensor with 783 values, but the requested shape requires a multiple of 784")
    }

    func testAnArchiveWithAnUnsupportedLayerIsRefusedAtLoadNamingIt() async throws {
        let (_, _, rest) = try await deployment()
        let status = try await rest.get("/v1/models/mnist_unsupported")
        let entry = try XCTUnwrap((status.object?["model_version_status"] as? [[String: Any]])?.first, status.text)
        XCTAssertEqual(entry["state"] as? String, "END")
        let message = (entry["status"] as? [String: Any])?["error_message"] as? String ?? ""
        XCTAssertTrue(message.contains("layer 'dropout': unsupported layer class LayerNormalization"), message)
        let predict = try await post(rest, "/v1/models/mnist_unsupported:predict", ["inputs": [[0.0]]])
        XCTAssertEqual(predict.status, 404, predict.text)
        XCTAssertEqual(predict.errorMessage, "Servable not found for request: Latest(mnist_unsupported)")
    }

    /// The tutorial's gRPC client with TF Serving's Python API, checked
    /// against TensorFlow's own export of each fixture (metadata, logits of
    /// `inputs[<input>]` as [20, 28, 28], and the same answers as TensorFlow
    /// to the tutorial's flat body and other shapes).
    func testTheTutorialsGRPCClientAgainstTensorFlowsExport() async throws {
        let (pipeline, _, _) = try await deployment()
        let venv = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/tf-serving-client-venv.sh").path, [], timeout: 900)
        XCTAssertEqual(venv.status, 0, "making the client venv failed:\n\(venv.output)")
        guard venv.status == 0, let python = venv.output.split(separator: "\n").last.map(String.init) else { return }
        let work = pipeline.directory.appendingPathComponent("tensorflow-exports")
        let run = try ProgramRun.run(python, [
            Paths.repo.appendingPathComponent("Tests/TFServingClient/tutorial_client.py").path,
            "--host", "127.0.0.1", "--rest-port", String(Self.ports.rest), "--grpc-port", String(Self.ports.grpc),
            "--fixtures", Paths.shared.appendingPathComponent("models/mnist_quickstart").path,
            "--mnist-dir", Paths.shared.appendingPathComponent("data/mnist/idx").path, "--work", work.path,
            "--model", "mnist_quickstart=model.h5", "--model", "mnist_keras3=model.keras",
        ], timeout: 600)
        // Its checks, one per line (TensorFlow's own warnings left out).
        print(run.output.split(separator: "\n").filter { $0.hasPrefix("ok ") || $0.hasPrefix("FAIL") || $0.hasPrefix("grpc ") }
            .joined(separator: "\n"))
        XCTAssertEqual(run.status, 0, "tutorial client:\n\(run.output)\n\(pipeline.diagnostics())")
        XCTAssertTrue(run.output.contains("tutorial client: all checks passed"), run.output)
    }
}
