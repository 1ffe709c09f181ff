/// Why an image could not be turned into model input.
///
/// Every error the image pipeline throws is one of these. The `description`
/// is a complete sentence fragment suitable for logs and for HTTP error bodies.
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The data was empty (zero bytes).
    case empty

    /// The data is not a JPEG. The payload names the format recognised from the
    /// magic bytes: `"PNG"`, `"GIF"`, `"BMP"`, `"WebP"`, `"TIFF"`, or `"unknown"`.
    case unsupportedFormat(String)

    /// The JPEG header declares more pixels than the decoder's limit. Thrown
    /// after reading the header only, before any pixel memory is allocated.
    case tooLarge(width: Int, height: Int, limit: Int)

    /// The data starts like a JPEG but libjpeg could not decode it, or decoded it
    /// only with a warning (for example truncated data). The payload is
    /// libjpeg's message, such as `"Premature end of JPEG file"`.
    case corrupt(String)

    /// The model takes a tensor of this shape per example, not an image
    /// (its input is not height × width × 1 or 3 channels).
    case notAnImageModel(inputShape: [Int])

    public var description: String {
        switch self {
        case .empty:
            return "empty image data"
        case .unsupportedFormat(let kind):
            return "unsupported image format: \(kind) (only JPEG is supported)"
        case let .tooLarge(width, height, limit):
            return "image is \(width)×\(height) = \(width * height) pixels, over the limit of \(limit) pixels"
        case .corrupt(let message):
            return "corrupt JPEG data: \(message)"
        case .notAnImageModel(let shape):
            return "the model takes a float tensor of shape \(shape) per example, not an image"
        }
    }
}

extension ImageError {
    /// The `.unsupportedFormat` error for data that does not start with the JPEG
    /// SOI marker, naming the format recognised from its first bytes.
    static func unsupported(sniffing bytes: UnsafeRawBufferPointer) -> ImageError {
        .unsupportedFormat(formatName(sniffing: bytes))
    }

    /// Names a non-JPEG image format from its magic bytes, or returns `"unknown"`.
    static func formatName(sniffing b: UnsafeRawBufferPointer) -> String {
        func starts(with magic: [UInt8], at offset: Int = 0) -> Bool {
            guard b.count >= offset + magic.count else { return false }
            for (i, byte) in magic.enumerated() where b[offset + i] != byte { return false }
            return true
        }
        if starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "PNG" }
        if starts(with: Array("GIF87a".utf8)) || starts(with: Array("GIF89a".utf8)) { return "GIF" }
        if starts(with: Array("RIFF".utf8)) && starts(with: Array("WEBP".utf8), at: 8) { return "WebP" }
        if starts(with: [0x49, 0x49, 0x2A, 0x00]) || starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts(with: Array("BM".utf8)) { return "BMP" }
        return "unknown"
    }
}
