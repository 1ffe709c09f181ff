import FuzzHarness
import Inception

/// The worker's image path on arbitrary bytes: the header check the ingress makes, then
/// decode + resize + normalise as for MobileNetV2 (224×224), with a 4-megapixel limit so
/// that a single input cannot ask for gigabytes. Any throw is fine; a crash, a sanitizer
/// report or a hang is a bug.
let preprocessor = ImagePreprocessor(width: 224, height: 224, channels: 3, mode: .mobilenet, maxPixels: 4_000_000)
let grayscale = ImagePreprocessor(width: 28, height: 28, channels: 1, mode: .raw, maxPixels: 4_000_000)

func fuzzOne(_ input: UnsafeRawBufferPointer) {
    let bytes = [UInt8](input)
    _ = try? preprocessor.decoder.header(bytes)
    _ = try? preprocessor.prepare(bytes)
    // One input in four also goes through the 1-channel path (CMYK → gray, Y-only).
    if bytes.first.map({ $0 & 3 == 0 }) == true {
        _ = try? grayscale.prepare(bytes)
    }
}

#if FUZZING
import CFuzzDriver

/// libFuzzer's entry: one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// SwiftPM links an executable target's entry point as `FuzzJPEGDecode_main`; it hands over to
/// libFuzzer's driver.
@_cdecl("FuzzJPEGDecode_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
#else
@main
enum FuzzJPEGDecode {
    static func main() { FuzzReplay.main("FuzzJPEGDecode", fuzzOne) }
}
#endif
