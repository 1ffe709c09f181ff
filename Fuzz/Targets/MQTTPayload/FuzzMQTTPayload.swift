import Foundation
import FuzzHarness
import Jobs
import MQTT

/// A request message as a worker or the store's ledger receives it, built from arbitrary
/// bytes without a broker, then read with `JobRequest(message:)`.
///
/// Input layout (whatever is missing is empty):
/// - byte 0: flags. bits 0–1 content type (none, `application/json`, `image/jpeg`, a string
///   from the input); bit 2 response topic present; bit 3 correlation data present;
///   bits 4–6 topic (the model's request topic, another model's, a results topic, a request
///   topic with an extra level, `conveyor/v1/requests/`, a topic from the input, …);
/// - byte 1: number of user properties (mod 8); each is a name and a value;
/// - strings are one length byte then that many bytes (read as UTF-8, as MQTT strings are);
/// - then the custom content type, the response topic, the correlation data and the custom
///   topic when their flags ask for them; the rest is the payload.
///
/// A request that decodes must be valid (job id rule, top_k range, model matching the
/// topic) and must decode the same from its own binary and JSON forms.
struct Reader {
    var bytes: UnsafeRawBufferPointer
    var at = 0
    mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }
    mutating func string() -> String {
        let n = Int(byte())
        let end = min(bytes.count, at + n)
        defer { at = end }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<end]), as: UTF8.self)
    }
    mutating func rest() -> [UInt8] {
        defer { at = bytes.count }
        return at < bytes.count ? [UInt8](UnsafeRawBufferPointer(rebasing: bytes[at...])) : []
    }
}

func message(from input: UnsafeRawBufferPointer) -> MQTTMessage {
    var r = Reader(bytes: input)
    let flags = r.byte()
    var properties = MQTTProperties()
    for _ in 0..<Int(r.byte() % 8) {
        properties.userProperties.append(MQTTUserProperty(name: r.string(), value: r.string()))
    }
    switch flags & 3 {
    case 1: properties.contentType = "application/json"
    case 2: properties.contentType = "image/jpeg"
    case 3: properties.contentType = r.string()
    default: break
    }
    if flags & 4 != 0 { properties.responseTopic = r.string() }
    if flags & 8 != 0 { properties.correlationData = Array(r.string().utf8) }
    let topic: String
    switch (flags >> 4) & 7 {
    case 0, 1: topic = Topics.requests(model: "mobilenet_v2")
    case 2: topic = Topics.requests(model: "inception_v3")
    case 3: topic = Topics.result(job: "x")
    case 4: topic = Topics.requests(model: "mobilenet_v2") + "/extra"
    case 5: topic = Topics.requests(model: "")
    default: topic = r.string()
    }
    return MQTTMessage(topic: topic, payload: r.rest(), qos: 1, properties: properties)
}

func fuzzOne(_ input: UnsafeRawBufferPointer) {
    let message = message(from: input)
    _ = Topics.jobID(fromTopic: message.topic)
    _ = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload))
    let request: JobRequest
    do {
        request = try JobRequest(message: message)
    } catch {
        if let id = error.jobID { precondition(JobID.isValid(id), "an invalid job id was recovered: \(id)") }
        return
    }
    precondition(JobID.isValid(request.jobID), "accepted an invalid job id: \(request.jobID)")
    precondition((1...1000).contains(request.topK), "accepted top_k \(request.topK)")
    if let model = Topics.model(fromRequestTopic: message.topic) {
        precondition(request.model == model, "accepted model \(request.model) on the topic of \(model)")
    }
    let topic = Topics.requests(model: request.model)
    let (payload, properties) = request.binaryMessage()
    let binary = try? JobRequest(message: MQTTMessage(topic: topic, payload: payload, qos: 1, properties: properties))
    precondition(binary == request, "the binary form does not read back the same request")
    // The JSON form cannot carry an empty image (empty base64 is refused); the worker fails
    // such a job as "empty image data" either way.
    guard !request.image.isEmpty else { return }
    let (json, jsonProperties) = request.jsonMessage()
    let again = try? JobRequest(message: MQTTMessage(topic: topic, payload: json, qos: 1, properties: jsonProperties))
    precondition(again == request, "the JSON form does not read back the same request")
}

#if FUZZING
import CFuzzDriver

/// libFuzzer's entry: one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// SwiftPM links an executable target's entry point as `FuzzMQTTPayload_main`; it hands over to
/// libFuzzer's driver.
@_cdecl("FuzzMQTTPayload_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
#else
@main
enum FuzzMQTTPayload {
    static func main() { FuzzReplay.main("FuzzMQTTPayload", fuzzOne) }
}
#endif
