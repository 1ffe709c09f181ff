internal import CTurboJPEG
import Foundation

/// Decodes JPEG images with libjpeg-turbo (TurboJPEG 2.1 API), bit-exactly like
/// TensorFlow's `tf.io.decode_jpeg(data, channels: 3, dct_method: "INTEGER_ACCURATE")`.
///
/// This file holds every call into libturbojpeg made by the project.
///
/// Decoding settings, chosen to match TensorFlow (`tensorflow/core/lib/jpeg/jpeg_mem.cc`):
/// - the accurate integer IDCT (`JDCT_ISLOW`, `TJFLAG_ACCURATEDCT`);
/// - fancy (triangular) chroma upsampling, libjpeg's default (`TJFLAG_FASTUPSAMPLE` is
///   not passed);
/// - no scaling, and EXIF orientation is **not** applied: pixels come out as stored;
/// - `channels: 3` asks libjpeg for RGB (a grayscale JPEG is replicated into R, G, B);
///   `channels: 1` asks for grayscale (libjpeg keeps only the Y component of a colour JPEG);
/// - CMYK and YCCK JPEGs are decoded to CMYK by libjpeg and then converted exactly as
///   TensorFlow does, in integer arithmetic with truncating division:
///   with an Adobe APP14 marker (Photoshop's inverted CMYK, which is what libjpeg writes)
///   `R = C*K/255`, `G = M*K/255`, `B = Y*K/255`; without one
///   `R = (255-C)*(255-K)/255` and so on. For `channels: 1` (which TensorFlow rejects for
///   CMYK) that RGB is reduced to luminance with libjpeg's own weights
///   (0.299, 0.587, 0.114 in 16-bit fixed point).
///
/// Error handling:
/// - the header is read first and an image over ``maxPixels`` is refused with
///   ``ImageError/tooLarge(width:height:limit:)`` before any pixel memory is allocated;
/// - libjpeg warnings (for example "Premature end of JPEG file" for truncated data,
///   "Corrupt JPEG data: …") are errors (``ImageError/corrupt(_:)``) and stop the decode
///   early. TensorFlow fails on truncated data too; it merely logs the other warnings.
/// - progressive JPEGs with more than 500 scans are refused (`TJFLAG_LIMITSCANS`), a guard
///   against decompression bombs that no real photograph comes near.
///
/// The decoder holds no C state: each call creates its own TurboJPEG handle and destroys
/// it before returning, so one value can be shared freely between threads and tasks.
public struct JPEGDecoder: Sendable {
    /// The largest image, in pixels (`width * height`), that `decode` accepts.
    /// Default 40,000,000: a 4032×3024 phone photo (12.2 M pixels) passes, and the
    /// decoded buffer stays under 160 MB (CMYK is decoded at 4 bytes per pixel).
    public var maxPixels: Int = 40_000_000

    /// Creates a decoder that refuses images with more than `maxPixels` pixels.
    public init(maxPixels: Int = 40_000_000) {
        self.maxPixels = maxPixels
    }

    // MARK: - Header

    /// Reads the image size from the JPEG header without decoding pixels.
    ///
    /// Does not apply ``maxPixels``.
    /// - Throws: ``ImageError/empty``, ``ImageError/unsupportedFormat(_:)`` or
    ///   ``ImageError/corrupt(_:)``.
    public func header(_ data: UnsafeRawBufferPointer) throws(ImageError) -> (width: Int, height: Int) {
        try Self.checkSignature(data)
        let handle = try Self.makeHandle()
        defer { tjDestroy(handle) }
        let info = try Self.readHeader(handle, data)
        return (info.width, info.height)
    }

    /// Reads the image size from the JPEG header without decoding pixels.
    public func header(_ data: [UInt8]) throws(ImageError) -> (width: Int, height: Int) {
        try Self.withBytes(data) { (buffer) throws(ImageError) in try header(buffer) }
    }

    /// Reads the image size from the JPEG header without decoding pixels.
    public func header(_ data: Data) throws(ImageError) -> (width: Int, height: Int) {
        try Self.withBytes(data) { (buffer) throws(ImageError) in try header(buffer) }
    }

    // MARK: - Decode

    /// Decodes a JPEG image to 8-bit RGB (`channels: 3`) or grayscale (`channels: 1`).
    ///
    /// - Parameter channels: 3 or 1. Any other value is a programming error.
    /// - Throws: ``ImageError``; never crashes on any input bytes.
    public func decode(_ data: UnsafeRawBufferPointer, channels: Int = 3) throws(ImageError) -> DecodedImage {
        precondition(channels == 3 || channels == 1, "JPEGDecoder: channels must be 1 or 3, got \(channels)")
        try Self.checkSignature(data)
        let handle = try Self.makeHandle()
        defer { tjDestroy(handle) }

        let info = try Self.readHeader(handle, data)
        // width, height <= 65500 (libjpeg's JPEG_MAX_DIMENSION), so no overflow.
        let pixelCount = info.width * info.height
        guard pixelCount <= maxPixels else {
            throw .tooLarge(width: info.width, height: info.height, limit: maxPixels)
        }

        let src = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
        let isCMYK = info.colorspace == TJCS_CMYK.rawValue || info.colorspace == TJCS_YCCK.rawValue
        let decodedChannels = isCMYK ? 4 : channels
        let pixelFormat: Int32 = isCMYK ? TJPF_CMYK.rawValue : (channels == 3 ? TJPF_RGB.rawValue : TJPF_GRAY.rawValue)
        let adobe = isCMYK && Self.hasAdobeMarker(data)

        var failure: ImageError?
        let pixels = [UInt8](unsafeUninitializedCapacity: pixelCount * decodedChannels) { buffer, count in
            let rc = tjDecompress2(handle, src, UInt(data.count), buffer.baseAddress,
                                   Int32(info.width), 0, Int32(info.height), pixelFormat, flags)
            guard rc == 0 else {
                failure = .corrupt(Self.errorMessage(handle))
                count = 0
                return
            }
            if isCMYK {
                Self.convertCMYK(buffer.baseAddress!, pixelCount: pixelCount, adobe: adobe, toChannels: channels)
            }
            count = pixelCount * channels
        }
        if let failure { throw failure }
        return DecodedImage(width: info.width, height: info.height, channels: channels, pixels: pixels)
    }

    /// Decodes a JPEG image to 8-bit RGB (`channels: 3`) or grayscale (`channels: 1`).
    public func decode(_ data: [UInt8], channels: Int = 3) throws(ImageError) -> DecodedImage {
        try Self.withBytes(data) { (buffer) throws(ImageError) in try decode(buffer, channels: channels) }
    }

    /// Decodes a JPEG image to 8-bit RGB (`channels: 3`) or grayscale (`channels: 1`).
    public func decode(_ data: Data, channels: Int = 3) throws(ImageError) -> DecodedImage {
        try Self.withBytes(data) { (buffer) throws(ImageError) in try decode(buffer, channels: channels) }
    }

    // MARK: - Internals

    private struct HeaderInfo {
        var width: Int
        var height: Int
        var colorspace: Int32
    }

    /// Runs `body` on the bytes of `data` with typed errors.
    private static func withBytes<C: ContiguousBytes, T>(
        _ data: C, _ body: (UnsafeRawBufferPointer) throws(ImageError) -> T
    ) throws(ImageError) -> T {
        let result: Result<T, ImageError> = data.withUnsafeBytes { buffer in
            do throws(ImageError) { return .success(try body(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Empty data, and data without the JPEG SOI marker `FF D8`, are rejected here.
    private static func checkSignature(_ data: UnsafeRawBufferPointer) throws(ImageError) {
        guard data.count > 0, data.baseAddress != nil else { throw .empty }
        guard data.count >= 2, data[0] == 0xFF, data[1] == 0xD8 else {
            throw ImageError.unsupported(sniffing: data)
        }
    }

    private static func makeHandle() throws(ImageError) -> tjhandle {
        guard let handle = tjInitDecompress() else {
            throw .corrupt("cannot create a TurboJPEG decompressor: \(errorMessage(nil))")
        }
        return handle
    }

    /// The message of the last TurboJPEG error on `handle` (or on this thread when nil).
    private static func errorMessage(_ handle: tjhandle?) -> String {
        guard let cString = tjGetErrorStr2(handle) else { return "unknown libjpeg error" }
        return String(cString: cString)
    }

    private static func readHeader(_ handle: tjhandle, _ data: UnsafeRawBufferPointer) throws(ImageError) -> HeaderInfo {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = -1, colorspace: Int32 = -1
        let src = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc = tjDecompressHeader3(handle, src, UInt(data.count), &width, &height, &subsampling, &colorspace)
        if rc != 0 {
            let message = errorMessage(handle)
            // TurboJPEG 2.1 refuses to report the header of a valid JPEG whose chroma sampling
            // factors match none of its TJSAMP_* presets, after filling in every field we need.
            // libjpeg (and TensorFlow) decode such files, so accept them as well.
            let onlyUnknownSubsampling = message.contains("subsampling") && tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue)
            guard onlyUnknownSubsampling, width > 0, height > 0, colorspace >= 0 else {
                throw .corrupt(message)
            }
        }
        // TurboJPEG reports success with a 0×0 size for a tables-only stream (no frame header),
        // which is also what a bare SOI marker looks like.
        guard width > 0, height > 0 else { throw .corrupt("JPEG datastream contains no image") }
        return HeaderInfo(width: Int(width), height: Int(height), colorspace: colorspace)
    }

    /// Whether the stream has an Adobe APP14 marker before its first scan, i.e. libjpeg's
    /// `saw_Adobe_marker`: an `FF EE` segment at least 12 data bytes long starting with "Adobe".
    private static func hasAdobeMarker(_ data: UnsafeRawBufferPointer) -> Bool {
        let n = data.count
        var i = 2
        while i + 1 < n {
            guard data[i] == 0xFF else { i += 1; continue }     // libjpeg skips stray bytes
            let marker = data[i + 1]
            switch marker {
            case 0xFF: i += 1                                    // fill byte
            case 0x00, 0x01, 0xD0...0xD8: i += 2                 // markers without a length
            case 0xD9, 0xDA: return false                        // EOI, SOS: header is over
            default:
                guard i + 3 < n else { return false }
                let length = Int(data[i + 2]) << 8 | Int(data[i + 3])
                if marker == 0xEE, length >= 14, i + 9 <= n,
                   data[i + 4] == 0x41, data[i + 5] == 0x64, data[i + 6] == 0x6F,
                   data[i + 7] == 0x62, data[i + 8] == 0x65 {
                    return true
                }
                guard length >= 2 else { return false }
                i += 2 + length
            }
        }
        return false
    }

    /// Converts CMYK samples (4 per pixel) in place to RGB (3) or gray (1), front to back,
    /// as TensorFlow's `jpeg_mem.cc` does. The write position never passes the read position.
    private static func convertCMYK(_ p: UnsafeMutablePointer<UInt8>, pixelCount: Int, adobe: Bool, toChannels channels: Int) {
        for i in 0..<pixelCount {
            let c = Int(p[4 * i]), m = Int(p[4 * i + 1]), y = Int(p[4 * i + 2]), k = Int(p[4 * i + 3])
            let r, g, b: Int
            if adobe {
                r = k * c / 255
                g = k * m / 255
                b = k * y / 255
            } else {
                r = (255 - k) * (255 - c) / 255
                g = (255 - k) * (255 - m) / 255
                b = (255 - k) * (255 - y) / 255
            }
            if channels == 3 {
                p[3 * i] = UInt8(truncatingIfNeeded: r)
                p[3 * i + 1] = UInt8(truncatingIfNeeded: g)
                p[3 * i + 2] = UInt8(truncatingIfNeeded: b)
            } else {
                // libjpeg's rgb_gray_convert: FIX(0.299), FIX(0.587), FIX(0.114), ONE_HALF, >> 16.
                p[i] = UInt8(truncatingIfNeeded: (19595 * r + 38470 * g + 7471 * b + 32768) >> 16)
            }
        }
    }
}
