import Foundation
import Jobs
import MQTT
import XCTest

/// Devices against the real `conveyor` services (store, one worker, ingress with API keys,
/// each with its own broker account) and a mosquitto running the shipped configuration
/// and ACL, serving MobileNetV2 (fast) under the name `mobilenet`.
final class DeviceTests: XCTestCase {
    static let model = "mobilenet"
    static let maxRequestBytes = 2_000_000
    static let modelPath = Paths.shared.appendingPathComponent("models/mobilenet_v2/mobilenet_v2_1.0_224.h5").path
    static let labelsPath = Paths.shared.appendingPathComponent("models/mobilenet_v2/labels.txt").path

    /// Keeps the accounts' directory for the life of the shared pipeline.
    final class Holder: @unchecked Sendable {
        let lock = NSLock()
        var secured: SecuredBroker?
    }
    static let holder = Holder()

    static let shared = SharedPipeline {
        let secured = try SecuredBroker(devices: ["cam-a", "cam-b"])
        holder.lock.withLock { holder.secured = secured }
        let pipeline = try Pipeline(name: "devices", broker: secured.broker)
        pipeline.servicePort = secured.authPort
        pipeline.model = DeviceTests.modelPath
        pipeline.labels = DeviceTests.labelsPath
        pipeline.modelName = DeviceTests.model
        pipeline.roleArguments = [
            "store": secured.serviceArguments("store"),
            "worker": secured.serviceArguments("worker") + ["--max-request-bytes", String(DeviceTests.maxRequestBytes)],
            "ingress": secured.serviceArguments("ingress") + ["--api-keys-file", secured.apiKeysFile],
        ]
        try await pipeline.start(workers: ["worker-dev"], ingresses: [.init(name: "ingress")])
        return pipeline
    }

    override class func tearDown() {
        shared.shutDown()
        holder.lock.withLock { holder.secured = nil }
        super.tearDown()
    }

    override func tearDown() async throws {
        Self.shared.record(testSucceeded: (testRun?.totalFailureCount ?? 1) == 0)
        try await super.tearDown()
    }

    private func setUpPipeline() async throws -> (Pipeline, SecuredBroker) {
        let pipeline = try await Self.shared.get()
        let secured = try XCTUnwrap(Self.holder.lock.withLock { Self.holder.secured })
        return (pipeline, secured)
    }

    private func device(_ name: String, _ secured: SecuredBroker, version: MQTTProtocolVersion = .v5) async throws -> DeviceClient {
        let client = DeviceClient(try secured.configuration(name, version: version))
        try await client.connect()
        try await client.listen(Topics.deviceRepliesPrefix(device: name) + "#")
        return client
    }

    /// The engine's own top-k for an image: `conveyor classify --json`.
    private func expectedTop(_ file: String, k: Int) throws -> [Int] {
        let (status, output) = try ProgramRun.run(Paths.binary, ["classify", file, "--model", Self.modelPath,
                                                                   "--labels", Self.labelsPath, "--json", "--top", String(k)])
        XCTAssertEqual(status, 0, output)
        let json = output[output.firstIndex(of: "[")!...]
        let array = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        return (array.first?["top"] as? [[String: Any]] ?? []).compactMap { ($0["index"] as? NSNumber)?.intValue }
    }

    /// `GET /job/{id}` with the API key until the job is terminal (the store records it
    /// moments after the device's answer).
    private func pollJob(_ id: String, _ pipeline: Pipeline, key: String, timeout: TimeInterval = 20) async throws -> JobView {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let reply = try await pipeline.http.get("/job/\(id)", headers: ["Authorization": "Bearer \(key)"])
            if reply.status == 200 {
                let view = try JobView(id: id, reply: reply)
                if view.isTerminal { return view }
            } else {
                XCTAssertEqual(reply.status, 404, reply.text)
            }
            if Date() >= deadline { throw PipelineError("job \(id) not terminal in the store: \(reply.status) \(reply.text)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: - Verdicts

    func testV5DeviceGetsItsVerdictWithCorrelationDataAndCanPollOverHTTP() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let camera = try await device("cam-a", secured)
        let replyTopic = Topics.deviceReply(device: "cam-a", key: "line1")
        var properties = MQTTProperties()
        properties.contentType = "image/jpeg"
        properties.responseTopic = replyTopic
        properties.correlationData = [0xCA, 0xFE, 0x01]
        properties.userProperties = [MQTTUserProperty(name: "top_k", value: "3")]
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        try await camera.client.publish(Topics.deviceRequests(device: "cam-a", model: Self.model),
                                        payload: [UInt8](jpeg), qos: 1, properties: properties)

        let answer = try await camera.result(on: replyTopic, timeout: 60)
        let (result, message) = try XCTUnwrap(answer, "no verdict on \(replyTopic)\n\(pipeline.diagnostics())")
        XCTAssertEqual(result.status, .succeeded, result.error ?? "")
        XCTAssertEqual(result.jobID, "cam-a_cafe01", "job id = device name + hex of the correlation data")
        XCTAssertEqual(message.properties.correlationData, [0xCA, 0xFE, 0x01])
        XCTAssertEqual(message.properties.contentType, "application/json")
        let expected = try expectedTop(Paths.sampleImage, k: 3)
        XCTAssertEqual(result.top.map(\.index), expected)

        // The store recorded the device's job: it can be polled over HTTP, with the API key.
        let key = try secured.apiKey()
        let view = try await pollJob(result.jobID, pipeline, key: key)
        XCTAssertEqual(view.status, "succeeded")
        XCTAssertEqual(view.top.map(\.index), expected)
        XCTAssertEqual(view.prediction, result.top.first?.label)

        // Without the key (or with a wrong one) the API answers 401; /health stays open.
        let anonymous = try await pipeline.http.get("/job/\(result.jobID)")
        XCTAssertEqual(anonymous.status, 401, anonymous.text)
        XCTAssertNotNil(anonymous.errorMessage, anonymous.text)
        XCTAssertEqual(anonymous.header("WWW-Authenticate"), "Bearer")
        let wrong = try await pipeline.http.get("/job/\(result.jobID)", headers: ["Authorization": "Bearer \(key)x"])
        XCTAssertEqual(wrong.status, 401, wrong.text)
        let post = try await pipeline.http.post("/predict", body: TestImages.predictBody(jpeg))
        XCTAssertEqual(post.status, 401, post.text)
        let health = try await pipeline.http.get("/health")
        XCTAssertEqual(health.status, 200)
        // No secret reaches a log.
        for process in pipeline.allProcesses {
            XCTAssertFalse(process.log.contains(key), "\(process.name) logged the API key")
            for account in ["ingress", "worker", "store"] {
                XCTAssertFalse(process.log.contains(try secured.password(account)), "\(process.name) logged a password")
            }
        }
        await camera.stop()
    }

    func testV311DeviceSendsJSONAndGetsItsVerdict() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let camera = try await device("cam-b", secured, version: .v311)
        let file = Paths.images.appendingPathComponent("0001.jpg").path
        let request = JobRequest(jobID: "part-0001", model: Self.model, topK: 2, image: try Data(contentsOf: URL(fileURLWithPath: file)))
        try await camera.client.publish(Topics.deviceRequests(device: "cam-b", model: Self.model),
                                        payload: [UInt8](request.jsonPayload()), qos: 1)
        let replyTopic = Topics.deviceReply(device: "cam-b", key: "part-0001")
        let answer = try await camera.result(on: replyTopic, timeout: 60)
        let (result, _) = try XCTUnwrap(answer, "no verdict on \(replyTopic)\n\(pipeline.diagnostics())")
        XCTAssertEqual(result.status, .succeeded, result.error ?? "")
        XCTAssertEqual(result.jobID, "cam-b_part-0001")
        XCTAssertEqual(result.top.map(\.index), try expectedTop(file, k: 2))
        let view = try await pollJob(result.jobID, pipeline, key: try secured.apiKey())
        XCTAssertEqual(view.status, "succeeded")
        await camera.stop()
    }

    // MARK: - Bad requests

    func testBadRequestsAreAnsweredFailedOnTheDevicesReplyTopic() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let v311 = try await device("cam-a", secured, version: .v311)
        let v5 = try await device("cam-a", secured)
        let other = try await device("cam-b", secured)
        let topic = Topics.deviceRequests(device: "cam-a", model: Self.model)
        func reply(_ key: String) -> String { Topics.deviceReply(device: "cam-a", key: key) }
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))

        // 3.1.1: not JSON at all (no job id to recover: answered on …/replies/invalid).
        try await v311.client.publish(topic, payload: Array("hello, conveyor".utf8), qos: 1)
        // 3.1.1: JSON without the image.
        try await v311.client.publish(topic, payload: Array(#"{"job_id": "no-image", "model": "mobilenet"}"#.utf8), qos: 1)
        // v5: too large for the workers (the broker's limit is higher, so it reaches them).
        var big = MQTTProperties(contentType: "image/jpeg", userProperties: [MQTTUserProperty(name: "job_id", value: "big-1")])
        try await v5.client.publish(topic, payload: [UInt8](jpeg) + [UInt8](repeating: 0, count: Self.maxRequestBytes), qos: 1, properties: big)
        // v5: says JPEG, is not one.
        big.userProperties = [MQTTUserProperty(name: "job_id", value: "junk-1")]
        try await v5.client.publish(topic, payload: Array("not a jpeg".utf8), qos: 1, properties: big)
        // v5: asks for the answer in another device's namespace.
        var steal = MQTTProperties(responseTopic: Topics.deviceReply(device: "cam-b", key: "steal"), contentType: "image/jpeg",
                                   userProperties: [MQTTUserProperty(name: "job_id", value: "steal-1")])
        steal.correlationData = [1]
        try await v5.client.publish(topic, payload: [UInt8](jpeg), qos: 1, properties: steal)

        let cases: [(DeviceClient, String, String, String?)] = [
            (v311, reply("invalid"), "neither a JPEG nor valid JSON", nil),
            (v311, reply("no-image"), "missing field 'image_b64'", "cam-a_no-image"),
            (v5, reply("big-1"), "over the limit of \(Self.maxRequestBytes) bytes", "cam-a_big-1"),
            (v5, reply("junk-1"), "bad image", "cam-a_junk-1"),
            (v5, reply("steal-1"), "outside this device's namespace", "cam-a_steal-1"),
        ]
        let key = try secured.apiKey()
        for (client, replyTopic, reason, id) in cases {
            let answer = try await client.result(on: replyTopic, timeout: 30)
            let (result, _) = try XCTUnwrap(answer, "no answer on \(replyTopic)\n\(pipeline.diagnostics())")
            XCTAssertEqual(result.status, .failed, replyTopic)
            XCTAssertTrue(result.error?.contains(reason) == true, "\(replyTopic): \(result.error ?? "no error")")
            if let id {
                XCTAssertEqual(result.jobID, id)
                let view = try await pollJob(id, pipeline, key: key)
                XCTAssertEqual(view.status, "failed")
                XCTAssertTrue(view.error?.contains(reason) == true, view.description)
            }
        }
        // Nothing reached cam-b's namespace.
        XCTAssertEqual(other.messages.map(\.topic), [])
        for client in [v311, v5, other] { await client.stop() }
        XCTAssertEqual(pipeline.stoppedServices, [])
    }

    // MARK: - Expiry

    func testRequestThatExpiredWhileQueuedIsAnsweredExpired() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let camera = try await device("cam-b", secured)
        let topic = Topics.deviceRequests(device: "cam-b", model: Self.model)
        let jpeg = [UInt8](try Data(contentsOf: Paths.images.appendingPathComponent("0000.jpg")))
        // A backlog for the one worker (MobileNetV2 takes tens of ms per image here), then a
        // request that may wait at most 1 s, then one that may wait a minute.
        let backlog = 120
        for n in 0..<backlog {
            let properties = MQTTProperties(contentType: "image/jpeg", userProperties: [MQTTUserProperty(name: "job_id", value: "load-\(n)")])
            try await camera.client.publish(topic, payload: jpeg, qos: 1, properties: properties)
        }
        for (key, expiry) in [("short", UInt32(1)), ("long", UInt32(60))] {
            let properties = MQTTProperties(contentType: "image/jpeg", userProperties: [MQTTUserProperty(name: "job_id", value: key)],
                                            messageExpiryInterval: expiry)
            try await camera.client.publish(topic, payload: jpeg, qos: 1, properties: properties)
        }
        let short = try await camera.result(on: Topics.deviceReply(device: "cam-b", key: "short"), timeout: 90)
        let long = try await camera.result(on: Topics.deviceReply(device: "cam-b", key: "long"), timeout: 90)
        let (expired, _) = try XCTUnwrap(short, "no answer for the short-lived request\n\(pipeline.diagnostics())")
        XCTAssertEqual(expired.status, .expired, expired.error ?? "")
        XCTAssertTrue(expired.error?.contains("expir") == true, expired.error ?? "")
        XCTAssertEqual(try XCTUnwrap(long).0.status, .succeeded)
        // The backlog was served, so the worker really was busy for over a second.
        let served = camera.messages.filter { $0.topic.contains("/replies/load-") }.count
        XCTAssertEqual(served, backlog)
        let view = try await pollJob("cam-b_short", pipeline, key: try secured.apiKey())
        XCTAssertEqual(view.status, "expired")
        await camera.stop()
    }

    // MARK: - Identities

    /// A device account cannot connect under a service's client id (which would close the
    /// service's connection and take over its session) nor join a shared subscription on
    /// the request topics (which would swallow jobs): the broker refuses both, and jobs
    /// submitted meanwhile all finish in their normal time.
    func testADeviceCannotTakeAServicesClientIDNorSubscribeToTheWorkersShare() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let key = try secured.apiKey()
        let image = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let ingress = try pipeline.ingress
        var ids: [String] = []
        for round in 0..<6 {
            let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(image),
                                                     headers: ["Authorization": "Bearer \(key)"])
            XCTAssertEqual(reply.status, 202, reply.text)
            if let id = reply.object?["job_id"] as? String { ids.append(id) }
            // The pipeline's store and ingress connect as "store" and "<name>-<port>".
            for serviceID in ["store", "\(ingress.name)-\(ingress.port)"] {
                let thief = MQTTClient(try secured.configuration("cam-a", clientID: serviceID))
                do {
                    try await thief.connect()
                    XCTFail("round \(round): cam-a connected with client id \(serviceID)")
                } catch let error as MQTTError {
                    guard case .connectionRefused = error else { throw error }
                }
                await thief.disconnect()
            }
        }
        let camera = try await device("cam-b", secured)
        for filter in ["$share/workers/conveyor/v1/requests/#", "$share/x/conveyor/v1/requests/+",
                       Topics.workerSubscription(model: Self.model), "$share/x/conveyor/v1/devices/cam-b/replies/#"] {
            do {
                try await camera.listen(filter)
                XCTFail("cam-b was granted \(filter)")
            } catch let error as MQTTError {
                guard case .subscriptionRefused = error else { throw error }
            }
        }
        for _ in 0..<6 {
            let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(image),
                                                     headers: ["Authorization": "Bearer \(key)"])
            XCTAssertEqual(reply.status, 202, reply.text)
            if let id = reply.object?["job_id"] as? String { ids.append(id) }
        }
        // One worker at a few jobs a second: 12 jobs well within 30 s each; a starved share
        // would wait for its lease.
        for id in ids {
            let view = try await pollJob(id, pipeline, key: key, timeout: 30)
            XCTAssertEqual(view.status, "succeeded", "job \(id)\n\(pipeline.diagnostics())")
        }
        await camera.stop()
    }

    // MARK: - Simulator

    func testSimulatorRuns200RequestsAtAFixedRateWithNoneUnanswered() async throws {
        let (pipeline, secured) = try await setUpPipeline()
        let process = ServiceProcess(
            name: "device-sim",
            arguments: ["device", "--broker", "mqtt://127.0.0.1:\(secured.authPort)", "--mqtt-username", "cam-a",
                        "--mqtt-password-file", secured.passwordFile("cam-a"), "--images", Paths.images.path,
                        "--rate", "20/s", "--count", "200", "--cameras", "2", "--model", Self.model, "--json", "--timeout", "30"],
            logFile: pipeline.directory.appendingPathComponent("device-sim.log"))
        let started = Date()
        try process.start()
        let deadline = Date().addingTimeInterval(90)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertFalse(process.isRunning, "the simulator did not finish in 90 s\n\(process.logTail())")
        process.stop()
        XCTAssertEqual(process.exitDescription, "exit 0", process.logTail())
        let log = process.log
        XCTAssertTrue(log.contains("sent "), "no progress line:\n\(process.logTail())")
        let line = try XCTUnwrap(log.split(separator: "\n").last { $0.hasPrefix("{") }, process.logTail())
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(report["requests"] as? Int, 200)
        XCTAssertEqual(report["succeeded"] as? Int, 200, "\(report)")
        XCTAssertEqual(report["failed"] as? Int, 0, "\(report)")
        XCTAssertEqual(report["unanswered"] as? Int, 0, "\(report)")
        XCTAssertEqual(report["publish_errors"] as? Int, 0, "\(report)")
        let latency = try XCTUnwrap(report["latency_ms"] as? [String: Any])
        XCTAssertEqual(latency["count"] as? Int, 200)
        // 200 requests at 20/s take about 10 s: the rate was honoured, not exceeded.
        let seconds = try XCTUnwrap(report["seconds"] as? Double)
        XCTAssertGreaterThan(seconds, 9.9)
        XCTAssertLessThan(elapsed, 60)

        // The same over MQTT 3.1.1 (JSON requests with a reply_topic), briefly. base64 makes
        // the largest photo (0006.jpg, 1,588,595 bytes; every 7th request) a JSON request over
        // the workers' 2,000,000-byte limit here: those 3 of 20 are answered failed, not lost.
        let v311 = ServiceProcess(
            name: "device-sim-v311",
            arguments: ["device", "--broker", "mqtt://127.0.0.1:\(secured.authPort)", "--mqtt-username", "cam-b",
                        "--mqtt-password-file", secured.passwordFile("cam-b"), "--images", Paths.images.path,
                        "--rate", "10", "--count", "20", "--v311", "--model", Self.model, "--timeout", "30"],
            logFile: pipeline.directory.appendingPathComponent("device-sim-v311.log"))
        try v311.start()
        let v311Deadline = Date().addingTimeInterval(60)
        while v311.isRunning && Date() < v311Deadline { try await Task.sleep(for: .milliseconds(200)) }
        v311.stop()
        XCTAssertEqual(v311.exitDescription, "exit 0", v311.logTail())
        XCTAssertTrue(v311.log.contains("answered 20 (succeeded 17, failed 3, expired 0)  unanswered 0"), v311.logTail())
        XCTAssertTrue(v311.log.contains("over the limit of \(Self.maxRequestBytes) bytes"), v311.logTail())
    }
}
