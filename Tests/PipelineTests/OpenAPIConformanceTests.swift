import Foundation
import XCTest

/// `openapi.yaml` against the real ingress: the document is served at `GET /openapi.yaml`
/// exactly as in the repository, and schemathesis (from PyPI, in a venv made by
/// `scripts/schemathesis-venv.sh` and kept in `.build/`) sends a bounded number of generated
/// requests to every operation — valid and invalid ones, and chains of POST /predict then
/// GET /job/{id} through the document's links — and fails on any 5xx or any answer whose
/// status, content type, headers or body the document does not describe.
///
/// The pipeline runs MobileNetV2 (jobs that pass the checks are classified for real) and the
/// ingress allows `?wait=` up to 1 s, so generated long polls stay short. TF Serving's
/// `/v1/models/…` routes are on the same port; the worker serves `mobilenet_v2`, so generated
/// names mostly get TF Serving's 404.
final class OpenAPIConformanceTests: OwnPipelineTestCase {
    func testServedDocumentIsTheRepositoryFile() async throws {
        let pipeline = try await start()
        let reply = try await pipeline.http.get("/openapi.yaml")
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.header("Content-Type"), "application/yaml")
        let file = try Data(contentsOf: Paths.repo.appendingPathComponent("openapi.yaml"))
        XCTAssertEqual(reply.body, file, "GET /openapi.yaml differs from openapi.yaml in the repository")
    }

    func testSchemathesisFindsNoServerErrorAndNoMismatch() async throws {
        let schemathesis = try Self.schemathesis()
        let pipeline = try await start()
        let port = try pipeline.ingress.port
        let work = pipeline.directory.appendingPathComponent("schemathesis", isDirectory: true)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let arguments = [
            "run", Paths.repo.appendingPathComponent("openapi.yaml").path,
            "--url", "http://127.0.0.1:\(port)",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                + "response_headers_conformance,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", "25", "--seed", "20261121", "--workers", "1",
            "--request-timeout", "30", "--generation-database", "none", "--no-color",
            // `:regress` answers 501 Unimplemented by design (TF Serving's code for it), which the
            // server-error check would count; the TF Serving tests check that answer instead.
            "--exclude-operation-id", "tfsRegress",
            // The event stream never ends, so no response could be checked; ConsoleAPITests reads it.
            "--exclude-operation-id", "events",
        ]
        let started = Date()
        let (status, output) = try ProgramRun.run(schemathesis, arguments, in: work, timeout: 300)
        let seconds = Int(Date().timeIntervalSince(started))
        print("schemathesis: exit \(status) after \(seconds) s\n\(output.suffix(1500))")
        XCTAssertEqual(status, 0, "schemathesis found problems (exit \(status), \(seconds) s):\n\(output.suffix(6000))")
        XCTAssertEqual(pipeline.stoppedServices, [], "services stopped during the run\n\(pipeline.diagnostics())")
    }

    // MARK: - Helpers

    private func start() async throws -> Pipeline {
        let pipeline = try Pipeline(name: "openapi")
        self.pipeline = pipeline
        pipeline.model = Paths.mobileNet
        pipeline.labels = Paths.mobileNetLabels
        pipeline.serviceArguments = ["--model-name", "mobilenet_v2"]
        try await pipeline.start(workers: ["worker-openapi"], ingresses: [
            .init(name: "ingress", extraArguments: ["--sample-image", Paths.sampleImage, "--max-wait-seconds", "1"]),
        ])
        return pipeline
    }

    /// The venv's `schemathesis`, made on first use (a minute or two: pip from PyPI).
    static func schemathesis() throws -> String {
        let script = Paths.repo.appendingPathComponent("scripts/schemathesis-venv.sh").path
        let (status, output) = try ProgramRun.run("/bin/bash", [script], in: Paths.repo, timeout: 600)
        let path = output.split(separator: "\n").last.map(String.init) ?? ""
        guard status == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw PipelineError("scripts/schemathesis-venv.sh failed (exit \(status)):\n\(output.suffix(3000))")
        }
        return path
    }

}
