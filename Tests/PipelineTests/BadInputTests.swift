import Foundation
import Jobs
import MQTT
import XCTest

/// The bad-input suite: tables of malformed requests sent to a running pipeline over HTTP and
/// straight onto the MQTT request topic. Each case must end in a clear 4xx (`{"error": …}`) or
/// a `failed` result naming the reason, and after every table the services must still run
/// and still classify a good image.
///
/// One pipeline serves the class: a private mosquitto with the shipped `message_size_limit`,
/// `conveyor store`, one `conveyor worker` and one `conveyor ingress`, all on MobileNetV2
/// (fast: these cases need a model, not InceptionV3's numbers). The cases of
/// `PipelineAPITests` (truncated JSON, missing `image_data`, `@@@@` base64, "hello" bytes,
/// truncated JPEG, a 60000×60000 header, a body over the limit, unknown ids, random bytes and
/// JSON without an image on MQTT) are not repeated here.
final class BadInputTests: XCTestCase {
    static let model = "mobilenet_v2"
    static let worker = "worker-bad-input"

    static let shared = SharedPipeline {
        let pipeline = try Pipeline(name: "bad-input", brokerConfig: ["message_size_limit 16777216"])
        pipeline.model = Paths.mobileNet
        pipeline.labels = Paths.mobileNetLabels
        pipeline.serviceArguments = ["--model-name", BadInputTests.model]
        try await pipeline.start(workers: [BadInputTests.worker], ingresses: [.init(name: "ingress")])
        return pipeline
    }

    override class func tearDown() {
        shared.shutDown()
        super.tearDown()
    }

    override func tearDown() async throws {
        Self.shared.record(testSucceeded: (testRun?.totalFailureCount ?? 1) == 0)
        try await super.tearDown()
    }

    private func pipeline() async throws -> Pipeline {
        try await Self.shared.get()
    }

    // MARK: - HTTP

    /// What an HTTP case must end in.
    enum HTTPOutcome {
        /// One of `statuses`; a `{"error": …}` JSON body mentioning `word` (when given) unless
        /// `jsonBody` is false (the router's own 404/405 for unknown routes has no body).
        case rejected([Int], mentioning: String?, jsonBody: Bool = true)
        /// 202, then the job ends `failed` with an error mentioning `word`.
        case failed(mentioning: String)
        /// 202, then the job succeeds (odd but valid input the service must cope with).
        case succeeded
    }

    struct HTTPCase {
        var name: String
        var method = "POST"
        var path = "/predict"
        var body: Data?
        var contentType = "application/json"
        var outcome: HTTPOutcome
    }

    static func json(_ text: String) -> Data { Data(text.utf8) }

    static func predict(_ image: Data, extra: String = "") -> Data {
        json(#"{"image_data": ""# + image.base64EncodedString() + #"""# + extra + "}")
    }

    static func httpCases() throws -> [HTTPCase] {
        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let good = cat.base64EncodedString()
        let id = JobID.make()
        let deepArray = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deepObject = String(repeating: #"{"a":"#, count: 20_000) + "1" + String(repeating: "}", count: 20_000)
        var invalidUTF8 = json(#"{"image_data": ""#)
        invalidUTF8.append(contentsOf: [0xFF, 0xFE, 0xC3, 0x28])
        invalidUTF8.append(json(#""}"#))
        var invalidUTF8InBase64 = json(#"{"image_data": ""# + good.prefix(400))
        invalidUTF8InBase64.append(contentsOf: [0xC0, 0xAF])
        invalidUTF8InBase64.append(json(good.dropFirst(400) + #""}"#))
        let r = { (name: String, body: Data, statuses: [Int], word: String?) in
            HTTPCase(name: name, body: body, outcome: .rejected(statuses, mentioning: word))
        }
        return [
            // Malformed JSON and bodies that are not a JSON object.
            r("empty body", Data(), [400], "JSON"),
            r("whitespace body", json("  \n\t "), [400], "JSON"),
            r("JSON array body", json(#"["image_data"]"#), [400], "object"),
            r("JSON string body", json(#""image_data""#), [400], nil),
            r("JSON number body", json("42"), [400], nil),
            r("JSON null body", json("null"), [400], nil),
            r("trailing garbage after the object", json(#"{"image_data": "\#(good)"} xyz"#), [400], "JSON"),
            r("single quotes", json("{'image_data': 'abc'}"), [400], "JSON"),
            r("form-encoded body", json("image_data=" + good.prefix(100)), [400], "JSON"),
            r("invalid UTF-8 in the JSON", invalidUTF8, [400], nil),
            r("invalid UTF-8 inside the base64", invalidUTF8InBase64, [400], nil),
            r("100000-deep array", json(#"{"image_data": \#(deepArray)}"#), [400], nil),
            r("20000-deep object", json(#"{"image_data": "x", "top_k": \#(deepObject)}"#), [400], nil),
            // Wrong types and values.
            r("image_data a number", json(#"{"image_data": 12}"#), [400], "image_data"),
            r("image_data null", json(#"{"image_data": null}"#), [400], "image_data"),
            r("image_data an array", json(#"{"image_data": ["\#(good.prefix(64))"]}"#), [400], "image_data"),
            r("image_data an object", json(#"{"image_data": {"b64": "AAAA"}}"#), [400], "image_data"),
            r("image_data empty", json(#"{"image_data": ""}"#), [400], "empty"),
            r("top_k a string", predict(cat, extra: #", "top_k": "5""#), [400], "top_k"),
            r("top_k zero", predict(cat, extra: #", "top_k": 0"#), [400], "top_k"),
            r("top_k negative", predict(cat, extra: #", "top_k": -3"#), [400], "top_k"),
            r("top_k 1001", predict(cat, extra: #", "top_k": 1001"#), [400], "top_k"),
            r("top_k fractional", predict(cat, extra: #", "top_k": 2.5"#), [400], "top_k"),
            r("top_k boolean", predict(cat, extra: #", "top_k": true"#), [400], "top_k"),
            r("top_k null", predict(cat, extra: #", "top_k": null"#), [400], "top_k"),
            r("top_k 30 digits", predict(cat, extra: #", "top_k": 123456789012345678901234567890"#), [400], "top_k"),
            r("top_k 1e999", predict(cat, extra: #", "top_k": 1e999"#), [400], nil),
            // Bad base64.
            r("data URL instead of base64", json(#"{"image_data": "data:image/jpeg;base64,\#(good)"}"#), [400], "base64"),
            r("base64 of length 4n+1", json(#"{"image_data": "\#(good)A"}"#), [400], "base64"),
            r("base64 with non-ASCII letters", json(#"{"image_data": "/9j/4ééé"}"#), [400], "base64"),
            r("base64 with padding in the middle", json(#"{"image_data": "/9j=4AAQ\#(good.prefix(40))"}"#), [400], "base64"),
            // Images that are not usable JPEGs.
            r("PNG", predict(BrokenJPEGs.png), [400], "PNG"),
            r("GIF", predict(BrokenJPEGs.gif), [400], "GIF"),
            r("zero-byte image (base64 padding only)", json(#"{"image_data": "===="}"#), [400], nil),
            r("JPEG SOI marker only", predict(Data([0xFF, 0xD8])), [400], "JPEG"),
            r("JPEG headers without image data", predict(try BrokenJPEGs.headersOnly(cat)), [400], "JPEG"),
            r("header claiming 0×0 pixels", predict(try TestImages.jpeg(cat, claimingWidth: 0, height: 0)), [400], "JPEG"),
            r("header claiming 65535×65535 pixels", predict(try TestImages.jpeg(cat, claimingWidth: 65535, height: 65535)), [400, 413], nil),
            r("header claiming 8000×6000 pixels (48 M)", predict(try TestImages.jpeg(cat, claimingWidth: 8000, height: 6000)), [413], "pixels"),
            r("9 MB of header segments (body over 10 MB)", predict(BrokenJPEGs.withGiantHeaders(cat, segments: 140)), [413], nil),
            HTTPCase(name: "image cut 10 bytes into the scan", body: predict(try BrokenJPEGs.cutInScan(cat, after: 10)),
                     outcome: .failed(mentioning: "JPEG")),
            HTTPCase(name: "scan data scrambled", body: predict(try BrokenJPEGs.scrambledScan(cat)),
                     outcome: .failed(mentioning: "JPEG")),
            HTTPCase(name: "2 MB of header segments (valid)", body: predict(BrokenJPEGs.withGiantHeaders(cat, segments: 32)),
                     outcome: .succeeded),
            // Job ids and the job route.
            HTTPCase(name: "job id of 10000 characters", method: "GET", path: "/job/" + String(repeating: "a", count: 10_000),
                     outcome: .rejected([404], mentioning: "no job")),
            HTTPCase(name: "job id of 65 characters", method: "GET", path: "/job/" + String(repeating: "b", count: 65),
                     outcome: .rejected([404], mentioning: "no job")),
            HTTPCase(name: "job id with +", method: "GET", path: "/job/a+b", outcome: .rejected([404], mentioning: "no job")),
            HTTPCase(name: "job id with %2F", method: "GET", path: "/job/a%2Fb", outcome: .rejected([404], mentioning: nil, jsonBody: false)),
            HTTPCase(name: "job id with %23", method: "GET", path: "/job/a%23b", outcome: .rejected([404], mentioning: "no job")),
            HTTPCase(name: "job id with %00", method: "GET", path: "/job/a%00b", outcome: .rejected([404], mentioning: "no job")),
            HTTPCase(name: "job id with a slash", method: "GET", path: "/job/a/b", outcome: .rejected([404], mentioning: nil, jsonBody: false)),
            HTTPCase(name: "wait not a number", method: "GET", path: "/job/\(id)?wait=soon", outcome: .rejected([400], mentioning: "wait")),
            HTTPCase(name: "wait negative", method: "GET", path: "/job/\(id)?wait=-1", outcome: .rejected([400], mentioning: "wait")),
            HTTPCase(name: "wait 1e999", method: "GET", path: "/job/\(id)?wait=1e999", outcome: .rejected([400], mentioning: "wait")),
            HTTPCase(name: "wait nan", method: "GET", path: "/job/\(id)?wait=nan", outcome: .rejected([400], mentioning: "wait")),
            // Unknown routes and methods; "unknown model" as far as this API has models.
            HTTPCase(name: "unknown route", method: "GET", path: "/v1/models/no_such_model", outcome: .rejected([404], mentioning: nil, jsonBody: false)),
            HTTPCase(name: "DELETE a job", method: "DELETE", path: "/job/\(id)", outcome: .rejected([404, 405], mentioning: nil, jsonBody: false)),
            HTTPCase(name: "GET /predict", method: "GET", path: "/predict", outcome: .rejected([404, 405], mentioning: nil, jsonBody: false)),
        ]
    }

    /// Every HTTP case in turn, then the services are checked.
    func testHTTPBadInputTable() async throws {
        let pipeline = try await pipeline()
        let http = try pipeline.http
        let cases = try Self.httpCases()
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        var accepted: [(HTTPCase, String)] = []
        for item in cases {
            let reply = try await http.send(method: item.method, path: item.path, body: item.body,
                                            contentType: item.body == nil ? nil : item.contentType, timeout: 60)
            let what = "\(item.name): \(item.method) \(item.path.prefix(60)) → \(reply.status) \(reply.text.prefix(200))"
            switch item.outcome {
            case let .rejected(statuses, word, jsonBody):
                XCTAssertTrue(statuses.contains(reply.status), "expected \(statuses): \(what)")
                guard jsonBody else { continue }
                XCTAssertTrue(reply.header("Content-Type")?.contains("application/json") == true, "content type: \(what)")
                guard let message = reply.errorMessage else {
                    XCTFail("no {\"error\": …} body: \(what)")
                    continue
                }
                if let word {
                    XCTAssertTrue(message.lowercased().contains(word.lowercased()), "error should mention \(word): \(what)")
                }
            case .failed, .succeeded:
                guard reply.status == 202, let id = reply.object?["job_id"] as? String else {
                    XCTFail("expected 202 with a job id: \(what)")
                    continue
                }
                accepted.append((item, id))
            }
        }
        XCTAssertEqual(pipeline.stoppedServices, [], "services stopped during the HTTP table\n\(pipeline.diagnostics())")
        for (item, id) in accepted {
            let job = try await pipeline.waitForTerminal(id, timeout: 120)
            switch item.outcome {
            case .failed(let word):
                XCTAssertEqual(job.status, "failed", "\(item.name): \(job)")
                XCTAssertTrue(job.error?.contains(word) == true, "\(item.name): the reason should mention \(word): \(job)")
                XCTAssertEqual(job.prediction, "", item.name)
            case .succeeded:
                XCTAssertEqual(job.status, "succeeded", "\(item.name): \(job)")
            case .rejected:
                break
            }
        }
        try await assertStillServing(pipeline)
    }

    // MARK: - MQTT

    /// What an MQTT case must end in.
    enum MQTTOutcome {
        /// A `failed` result mentioning `word`, on the reply topic (always) and on
        /// `conveyor/v1/results/<jobID>` when the id is recoverable (`jobID` non-nil).
        case failed(jobID: String?, mentioning: String)
        /// The broker refuses the PUBLISH (the publisher's QoS 1 publish throws).
        case refusedByBroker
    }

    struct MQTTCase {
        var name: String
        var topic = Topics.requests(model: BadInputTests.model)
        var payload: [UInt8]
        var properties = MQTTProperties()
        var outcome: MQTTOutcome
    }

    static func mqttCases() throws -> [MQTTCase] {
        let cat = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let b64 = cat.base64EncodedString()
        func request(_ fields: String, image: String = b64) -> [UInt8] {
            Array(#"{"model": "\#(BadInputTests.model)", "image_b64": "\#(image)"\#(fields)}"#.utf8)
        }
        func binary(_ properties: [(String, String)], contentType: String? = "image/jpeg") -> MQTTProperties {
            MQTTProperties(contentType: contentType, userProperties: properties.map { MQTTUserProperty(name: $0.0, value: $0.1) })
        }
        let idRule = "job_id must be 1-64 characters"
        let tag = UUID().uuidString.prefix(6).lowercased()
        var invalidUTF8 = Array(#"{"job_id": "#.utf8)
        invalidUTF8 += [0x22, 0xFF, 0xFE, 0x22, 0x7D]
        let c = { (name: String, payload: [UInt8], properties: MQTTProperties, id: String?, word: String) in
            MQTTCase(name: name, payload: payload, properties: properties, outcome: .failed(jobID: id, mentioning: word))
        }
        let json = MQTTProperties(contentType: "application/json")
        return [
            // JSON form.
            c("JSON: bad base64", request(#", "job_id": "m-b64-\#(tag)""#, image: "@@not base64@@"), json, "m-b64-\(tag)", "base64"),
            c("JSON: job_id a number", request(#", "job_id": 12345"#), json, nil, "job_id"),
            c("JSON: job_id with /", request(#", "job_id": "dev/1""#), json, nil, idRule),
            c("JSON: job_id with +", request(#", "job_id": "dev+1""#), json, nil, idRule),
            c("JSON: job_id with #", request(#", "job_id": "dev#1""#), json, nil, idRule),
            c("JSON: job_id of 10000 characters", request(#", "job_id": "\#(String(repeating: "x", count: 10_000))""#), json, nil, idRule),
            c("JSON: job_id empty", request(#", "job_id": """#), json, nil, idRule),
            c("JSON: top_k a string", request(#", "job_id": "m-topk-\#(tag)", "top_k": "5""#), json, "m-topk-\(tag)", "top_k"),
            c("JSON: top_k zero", request(#", "job_id": "m-topk0-\#(tag)", "top_k": 0"#), json, "m-topk0-\(tag)", "top_k"),
            c("JSON: top_k 1e30", request(#", "job_id": "m-topkbig-\#(tag)", "top_k": 1e30"#), json, "m-topkbig-\(tag)", "top_k"),
            c("JSON: submitted_at 1e400 (not a JSON number here)", request(#", "job_id": "m-subm-\#(tag)", "submitted_at": 1e400"#), json,
              nil, "valid JSON"),
            c("JSON: version a string", request(#", "job_id": "m-vstr-\#(tag)", "version": "two""#), json, "m-vstr-\(tag)", "version"),
            c("JSON: unknown version 99", request(#", "job_id": "m-v99-\#(tag)", "version": 99"#), json, "m-v99-\(tag)", "unknown version 99"),
            c("JSON: unknown model on this model's topic",
              Array(#"{"model": "no_such_model", "job_id": "m-model-\#(tag)", "image_b64": "\#(b64)"}"#.utf8), json,
              "m-model-\(tag)", "no_such_model"),
            c("JSON: reply_topic with a wildcard", request(#", "job_id": "m-reply-\#(tag)", "reply_topic": "a/#""#), json,
              "m-reply-\(tag)", "wildcard"),
            c("JSON: image is a truncated JPEG", request(#", "job_id": "m-trunc-\#(tag)""#, image: cat.prefix(5000).base64EncodedString()),
              json, "m-trunc-\(tag)", "bad image"),
            c("JSON: invalid UTF-8", invalidUTF8, json, nil, "neither a JPEG nor valid JSON"),
            c("JSON: 100000-deep array", Array((#"{"job_id": "# + String(repeating: "[", count: 100_000)).utf8), json, nil, "bad request"),
            c("JSON: array payload", Array(#"[{"job_id": "m-arr"}]"#.utf8), json, nil, "not a request object"),
            // Binary form (v5 user properties).
            c("binary: job_id with /", [UInt8](cat), binary([("job_id", "cam/1")]), nil, idRule),
            c("binary: job_id with #", [UInt8](cat), binary([("job_id", "#")]), nil, idRule),
            c("binary: top_k not a number", [UInt8](cat), binary([("job_id", "b-topk-\(tag)"), ("top_k", "five")]), "b-topk-\(tag)", "top_k"),
            c("binary: version not a number", [UInt8](cat), binary([("job_id", "b-ver-\(tag)"), ("version", "latest")]), "b-ver-\(tag)", "version"),
            c("binary: unknown version 2", [UInt8](cat), binary([("job_id", "b-v2-\(tag)"), ("version", "2")]), "b-v2-\(tag)", "unknown version 2"),
            c("binary: unknown model", [UInt8](cat), binary([("job_id", "b-model-\(tag)"), ("model", "no_such_model")]), "b-model-\(tag)", "no_such_model"),
            c("binary: submitted_at not a number", [UInt8](cat), binary([("job_id", "b-subm-\(tag)"), ("submitted_at", "yesterday")]),
              "b-subm-\(tag)", "submitted_at"),
            c("binary: zero-byte image", [], binary([("job_id", "b-empty-\(tag)")]), "b-empty-\(tag)", "empty image"),
            c("binary: PNG declared as image/png", [UInt8](BrokenJPEGs.png), binary([("job_id", "b-png-\(tag)")], contentType: "image/png"),
              "b-png-\(tag)", "PNG"),
            c("binary: header claiming 60000×60000 pixels", [UInt8](try TestImages.jpeg(cat, claimingWidth: 60000, height: 60000)),
              binary([("job_id", "b-huge-\(tag)")]), "b-huge-\(tag)", "over the limit"),
            c("binary: scan data scrambled", [UInt8](try BrokenJPEGs.scrambledScan(cat)), binary([("job_id", "b-scr-\(tag)")]),
              "b-scr-\(tag)", "bad image"),
            c("binary: 8 MB of random bytes after FF D8", [0xFF, 0xD8] + Self.randomBytes(8_000_000),
              binary([("job_id", "b-big-\(tag)")]), "b-big-\(tag)", "bad image"),
            c("binary: 15 MB, over the workers' request limit (12 MiB)", [0xFF, 0xD8] + Self.randomBytes(15_000_000),
              binary([("job_id", "b-limit-\(tag)")]), "b-limit-\(tag)", "over the limit of 12582912 bytes"),
            MQTTCase(name: "binary: 17 MB payload, over the broker's message_size_limit",
                     payload: [0xFF, 0xD8] + Self.randomBytes(17_000_000), properties: binary([("job_id", "b-over-\(tag)")]),
                     outcome: .refusedByBroker),
        ]
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 40)
        }
    }

    /// Every MQTT case published straight onto the request topic, each with its own v5
    /// response topic and correlation data so that cases whose job id cannot be recovered
    /// are still told apart; then the services are checked.
    func testMQTTBadInputTable() async throws {
        let pipeline = try await pipeline()
        let cases = try Self.mqttCases()
        XCTAssertGreaterThanOrEqual(cases.count, 25)
        let replyRoot = "conveyor-tests/bad-input/replies"
        let replies = try await MessageCollector.start(port: pipeline.broker.port, filter: "\(replyRoot)/+")
        let results = try await ResultListener.start(port: pipeline.broker.port)
        let publisher = MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: pipeline.broker.port,
                                                     clientID: "bad-input-\(UUID().uuidString.prefix(6))", protocolVersion: .v5))
        try await publisher.connect()

        var expected: [(MQTTCase, String, String?, String)] = []  // case, reply topic, job id, word
        for (index, item) in cases.enumerated() {
            var properties = item.properties
            let replyTopic = "\(replyRoot)/\(index)"
            properties.responseTopic = replyTopic
            properties.correlationData = Array(item.name.utf8)
            switch item.outcome {
            case .refusedByBroker:
                do {
                    try await publisher.publish(item.topic, payload: item.payload, qos: 1, properties: properties)
                    XCTFail("\(item.name): the broker accepted a \(item.payload.count)-byte payload")
                } catch {
                    // Refused, as the broker's configuration says.
                }
                if !publisher.isConnected { try await publisher.connect() }
            case let .failed(id, word):
                try await publisher.publish(item.topic, payload: item.payload, qos: 1, properties: properties)
                expected.append((item, replyTopic, id, word))
            }
        }

        for (item, replyTopic, id, word) in expected {
            let reply = try await replies.first(timeout: 60) { $0.topic == replyTopic }
            guard let reply else {
                XCTFail("\(item.name): no result on its reply topic\n\(pipeline.diagnostics())")
                continue
            }
            XCTAssertEqual(reply.properties.correlationData, Array(item.name.utf8), "\(item.name): correlation data echoed")
            guard let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(reply.payload)) else {
                XCTFail("\(item.name): the reply is not a result: \(String(decoding: reply.payload.prefix(300), as: UTF8.self))")
                continue
            }
            XCTAssertEqual(result.status, .failed, "\(item.name): \(result)")
            XCTAssertTrue(result.error?.contains(word) == true, "\(item.name): the reason should mention '\(word)': \(result.error ?? "nil")")
            if let id {
                XCTAssertEqual(result.jobID, id, item.name)
                let onTopic = try await results.first(timeout: 30) { $0.jobID == id && $0.status.isTerminal }
                XCTAssertEqual(onTopic?.status, .failed, "\(item.name): the result on conveyor/v1/results/\(id)")
                XCTAssertEqual(onTopic?.error, result.error, item.name)
            }
        }
        // Nothing was published for the refused payload.
        let refusedIDs = cases.compactMap { item -> String? in
            guard case .refusedByBroker = item.outcome else { return nil }
            return item.properties.userProperty("job_id")
        }
        XCTAssertTrue(results.results.allSatisfy { !refusedIDs.contains($0.jobID) }, "a refused payload got a result")

        // The store recorded the recoverable failures: GET /job shows them.
        for (item, _, id, _) in expected.prefix(3) {
            guard let id else { continue }
            let job = try await pipeline.waitForTerminal(id, timeout: 30)
            XCTAssertEqual(job.status, "failed", "\(item.name) via GET /job: \(job)")
        }
        await publisher.disconnect()
        await replies.stop()
        await results.stop()
        try await assertStillServing(pipeline)
    }

    // MARK: - Helpers

    /// Every process still runs, the ingress answers and a normal job still succeeds.
    private func assertStillServing(_ pipeline: Pipeline, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertEqual(pipeline.stoppedServices, [], "services stopped\n\(pipeline.diagnostics())", file: file, line: line)
        let health = try await pipeline.http.get("/health")
        XCTAssertEqual(health.status, 200, file: file, line: line)
        let id = try await pipeline.submit(try TestImages.contents("coral/hot_dog.jpg"))
        let job = try await pipeline.waitForTerminal(id, timeout: 120)
        XCTAssertEqual(job.status, "succeeded", "a normal job after the bad ones: \(job)\n\(pipeline.diagnostics())",
                       file: file, line: line)
    }
}
