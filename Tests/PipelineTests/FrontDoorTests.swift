import Foundation
import XCTest

/// What every front door of the ingress shares: the API keys and the per-client rate limit
/// apply to the job API, TF Serving REST and TF Serving gRPC alike (429 + Retry-After over
/// HTTP, RESOURCE_EXHAUSTED over gRPC), every error of the job API is JSON (unknown routes
/// and wrong methods too), and a broker password given in a URL never reaches a log.
final class FrontDoorTests: FaultTestCase {
    private func keysFile(_ pipeline: Pipeline) throws -> (path: String, key: String) {
        let key = "front-door-\(UUID().uuidString)"
        let url = pipeline.directory.appendingPathComponent("api-keys")
        try Data("# test keys\n\(key)\n".utf8).write(to: url)
        return (url.path, key)
    }

    /// `conveyor predict --format grpc` with the image, optionally with the key file.
    private func grpcPredict(_ port: Int, keyFile: String?) throws -> (status: Int32, output: String) {
        var arguments = ["predict", Paths.sampleImage, "--format", "grpc", "--target", "127.0.0.1:\(port)",
                         "--model", Self.model, "--timeout", "60"]
        if let keyFile { arguments += ["--api-key-file", keyFile] }
        return try ProgramRun.run(Paths.binary, arguments, timeout: 120)
    }

    func testAPIKeysAndTheRateLimitCoverEveryFrontDoor() async throws {
        let pipeline = try makePipeline("front-doors", lease: 30)
        let (keyFile, key) = try keysFile(pipeline)
        let (restPort, grpcPort) = (try Ports.free(), try Ports.free())
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments, ingresses: [.init(
            name: "ingress",
            extraArguments: ["--rest-port", String(restPort), "--grpc-port", String(grpcPort), "--api-keys-file", keyFile,
                             "--rate-limit", "0.1", "--rate-burst", "1"])])
        let rest = HTTPClient(port: restPort)
        let auth = ["Authorization": "Bearer \(key)"]
        let image = try Self.images()[0]
        let body = try JSONSerialization.data(withJSONObject: ["instances": [["b64": image.base64EncodedString()]]])
        let path = "/v1/models/\(Self.model):predict"

        // Without a key (or with a wrong one) every door says 401 / UNAUTHENTICATED.
        let anonymous = try await rest.post(path, body: body)
        XCTAssertEqual(anonymous.status, 401, anonymous.text)
        XCTAssertNotNil(anonymous.errorMessage, anonymous.text)
        let wrong = try await rest.post(path, body: body, headers: ["Authorization": "Bearer \(key)x"])
        XCTAssertEqual(wrong.status, 401, wrong.text)
        let onJobPort = try await pipeline.http.post(path, body: body)
        XCTAssertEqual(onJobPort.status, 401, onJobPort.text)
        let noKey = try grpcPredict(grpcPort, keyFile: nil)
        XCTAssertNotEqual(noKey.status, 0, noKey.output)
        XCTAssertTrue(noKey.output.lowercased().contains("unauthenticated") && noKey.output.contains("missing API key"), noKey.output)

        // With the key: the model becomes available (status calls create no jobs)...
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let status = try await rest.get("/v1/models/\(Self.model)", headers: auth)
            if status.text.contains("AVAILABLE") { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        // ...the first request takes the client's one token, and every door then refuses.
        let first = try await rest.post(path, body: body, headers: auth)
        XCTAssertEqual(first.status, 200, first.text)
        let limited = try await rest.post(path, body: body, headers: auth)
        XCTAssertEqual(limited.status, 429, limited.text)
        XCTAssertNotNil(limited.errorMessage, limited.text)
        let retry = try XCTUnwrap(Int(limited.header("Retry-After") ?? ""), limited.text)
        XCTAssertGreaterThanOrEqual(retry, 1)
        let limitedOnJobPort = try await pipeline.http.post(path, body: body, headers: auth)
        XCTAssertEqual(limitedOnJobPort.status, 429, limitedOnJobPort.text)
        let limitedPredict = try await pipeline.http.post("/predict", body: TestImages.predictBody(image), headers: auth)
        XCTAssertEqual(limitedPredict.status, 429, limitedPredict.text)
        let limitedGRPC = try grpcPredict(grpcPort, keyFile: keyFile)
        XCTAssertNotEqual(limitedGRPC.status, 0, limitedGRPC.output)
        XCTAssertTrue(limitedGRPC.output.lowercased().contains("resource exhausted")
                      || limitedGRPC.output.contains("resourceExhausted"), limitedGRPC.output)
        XCTAssertTrue(limitedGRPC.output.contains("jobs per second"), limitedGRPC.output)
    }

    func testEveryJobAPIErrorIsJSON() async throws {
        let pipeline = try makePipeline("json-errors", lease: 30)
        try await pipeline.start(ingresses: [.init(name: "ingress")])
        let http = try pipeline.http
        for (method, path, status, allow) in [("GET", "/nope", 404, nil), ("GET", "/predict/test/x", 404, nil),
                                             ("DELETE", "/predict", 405, "POST"), ("PUT", "/job/abc", 405, "GET, DELETE"),
                                             ("POST", "/health", 405, "GET"), ("GET", "/job/not%20valid", 404, nil)] as [(String, String, Int, String?)] {
            let reply = try await http.send(method: method, path: path, body: method == "GET" ? nil : Data("{}".utf8),
                                            contentType: method == "GET" ? nil : "application/json", timeout: 30)
            XCTAssertEqual(reply.status, status, "\(method) \(path): \(reply.text)")
            XCTAssertEqual(reply.header("Content-Type"), "application/json", "\(method) \(path)")
            XCTAssertNotNil(reply.errorMessage, "\(method) \(path): \(reply.text)")
            XCTAssertEqual(reply.header("Allow"), allow, "\(method) \(path)")
        }
    }

    /// A password in `--broker`'s URL is shown as `***` in what the services log and in
    /// their errors.
    func testABrokerPasswordInAURLNeverReachesALog() async throws {
        let pipeline = try makePipeline("redaction", lease: 30)
        let secret = "s3cret-\(UUID().uuidString.prefix(8))"
        // The test broker lets anyone in: the password is only there to be hidden.
        let url = "mqtt://someone:\(secret)@127.0.0.1:\(pipeline.broker.port)"
        try pipeline.broker.start()
        let dataDir = pipeline.directory.appendingPathComponent("up")
        let httpPort = try Ports.free()
        let up = ServiceProcess(
            name: "up",
            // From the environment, so that the test's own command-line header in the log holds no secret.
            arguments: ["up", "--model", Paths.mobileNet, "--labels", Paths.mobileNetLabels,
                        "--model-name", Self.model, "--port", String(httpPort), "--rest-port", "0", "--grpc-port", "0",
                        "--data-dir", dataDir.path],
            logFile: pipeline.directory.appendingPathComponent("up.log"),
            environment: ServiceProcess.childEnvironment().merging(["CONVEYOR_BROKER": url]) { $1 })
        try up.start()
        defer { _ = up.stop(grace: 15) }
        try up.waitForLog("conveyor up: broker", timeout: 120)
        XCTAssertTrue(up.log.contains("someone:***@127.0.0.1"), up.logTail())
        XCTAssertFalse(up.log.contains(secret), "the password reached the log:\n\(up.logTail())")

        let bad = try ProgramRun.run(Paths.binary, ["store", "--broker", "mqtt://someone:\(secret)@127.0.0.1:99999",
                                                    "--database", dataDir.appendingPathComponent("x.sqlite").path])
        XCTAssertNotEqual(bad.status, 0, bad.output)
        XCTAssertTrue(bad.output.contains("someone:***@"), bad.output)
        XCTAssertFalse(bad.output.contains(secret), bad.output)
    }
}
