/// A decoded 8-bit image, stored row by row with interleaved channels (HWC).
///
/// `pixels[(y * width + x) * channels + c]` is channel `c` of the pixel in
/// row `y`, column `x`. Channels are R, G, B for a colour image and a single
/// luminance value for a grayscale one.
public struct DecodedImage: Sendable, Equatable {
    /// Width in pixels (> 0).
    public let width: Int
    /// Height in pixels (> 0).
    public let height: Int
    /// Values per pixel: 3 (RGB) or 1 (grayscale).
    public let channels: Int
    /// `width * height * channels` samples in HWC order.
    public var pixels: [UInt8]

    /// Wraps existing pixels. `pixels.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && channels > 0, "image dimensions must be positive")
        precondition(pixels.count == width * height * channels,
                     "expected \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}
