import Foundation
import FuzzHarness
import Jobs

/// The JSON the services parse from clients, on arbitrary bytes: the `POST /predict` body
/// (`PredictRequest`, what the ingress runs), the JSON request form (`JobRequest`, what
/// workers and the store's ledger run), results (`JobResult`, what the store and the
/// ingress's long polls read), and `Base64` on the bytes as text. A successful parse must
/// survive a round trip through the JSON encoder.
func fuzzOne(_ input: UnsafeRawBufferPointer) {
    let data = Data(input)
    if let body = try? PredictRequest(json: data) {
        precondition((1...1000).contains(body.topK), "top_k out of range: \(body.topK)")
    }
    if let request = try? JSONCoding.decoder.decode(JobRequest.self, from: data) {
        let again = try? JSONCoding.decoder.decode(JobRequest.self, from: request.jsonPayload())
        precondition(again == request, "JobRequest does not survive a JSON round trip")
    }
    if let result = try? JSONCoding.decoder.decode(JobResult.self, from: data) {
        let again = try? JSONCoding.decoder.decode(JobResult.self, from: result.jsonPayload())
        precondition(again?.jobID == result.jobID && again?.status == result.status, "JobResult does not survive a JSON round trip")
    }
    _ = Base64.decode(String(decoding: data, as: UTF8.self))
}

#if FUZZING
import CFuzzDriver

/// libFuzzer's entry: one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// SwiftPM links an executable target's entry point as `FuzzRequestJSON_main`; it hands over to
/// libFuzzer's driver.
@_cdecl("FuzzRequestJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
#else
@main
enum FuzzRequestJSON {
    static func main() { FuzzReplay.main("FuzzRequestJSON", fuzzOne) }
}
#endif
