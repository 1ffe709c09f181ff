import Foundation

/// How a decoded image becomes model input. Each mode reproduces the TensorFlow
/// pipeline that produced the model's reference inputs (see `shared/models/README.md`).
/// All resizing is ``resizeBilinear(_:toWidth:height:)`` (TF2 bilinear, half-pixel centers,
/// no antialias, aspect ratio not kept, no crop).
public enum Preprocessing: String, Sendable, CaseIterable, Codable {
    /// InceptionV3: `x = float32(u8) / 255`, resize on those 0…1 values, then `x * 2 - 1`.
    /// Input range [-1, 1].
    case inception
    /// MobileNetV2 (float rebuild of the uint8 TFLite model): resize `float32(u8)` on the
    /// 0…255 scale, quantize `q = uint8(clip(round_half_even(x), 0, 255))` (the TFLite input),
    /// then `(float32(q) - 128) / 128`. Input range [-1, 0.9921875].
    case mobilenet
    /// No scaling: resize `float32(u8)`, values stay on 0…255 (LeNet: 28×28×1 grayscale,
    /// white digit on black).
    case raw
}

/// Turns JPEG bytes into a model's input tensor: decode, resize, scale.
///
/// A plain value, safe to share between tasks. Each call allocates only the decoded image
/// (plus the returned array for the overloads that return one). The work is CPU-bound and
/// synchronous (55–75 ms for a 4032×3024 photo on this 2-core machine), so run it off the cooperative pool.
public struct ImagePreprocessor: Sendable {
    /// Output width in pixels.
    public var width: Int
    /// Output height in pixels.
    public var height: Int
    /// Output channels: 3 (RGB) or 1 (grayscale, decoded by libjpeg as the JPEG's Y component).
    public var channels: Int
    /// The scaling applied after resizing.
    public var mode: Preprocessing
    /// The JPEG decoder, which also holds the pixel limit.
    public var decoder: JPEGDecoder

    /// - Parameters:
    ///   - width, height: the model's input size, e.g. 299×299 for InceptionV3.
    ///   - channels: 3 or 1.
    ///   - mode: the model's preprocessing.
    ///   - maxPixels: the largest JPEG (width × height) accepted; see ``JPEGDecoder/maxPixels``.
    public init(width: Int, height: Int, channels: Int = 3, mode: Preprocessing, maxPixels: Int = 40_000_000) {
        precondition(width > 0 && height > 0, "ImagePreprocessor: size must be positive, got \(width)×\(height)")
        precondition(channels == 3 || channels == 1, "ImagePreprocessor: channels must be 1 or 3, got \(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.mode = mode
        self.decoder = JPEGDecoder(maxPixels: maxPixels)
    }

    /// InceptionV3: 299×299×3, ``Preprocessing/inception``.
    public static let inceptionV3 = ImagePreprocessor(width: 299, height: 299, channels: 3, mode: .inception)
    /// MobileNetV2: 224×224×3, ``Preprocessing/mobilenet``.
    public static let mobileNetV2 = ImagePreprocessor(width: 224, height: 224, channels: 3, mode: .mobilenet)
    /// LeNet (MNIST): 28×28×1, ``Preprocessing/raw``.
    public static let leNet = ImagePreprocessor(width: 28, height: 28, channels: 1, mode: .raw)

    /// Number of floats in one prepared input: `width * height * channels`.
    public var elementCount: Int { width * height * channels }

    /// JPEG bytes → model input, HWC Float32, written to `dest` (``elementCount`` floats).
    /// - Throws: ``ImageError`` for empty, non-JPEG, oversized or corrupt data; `dest` is
    ///   not written then.
    public func prepare(_ jpeg: [UInt8], into dest: UnsafeMutablePointer<Float>) throws(ImageError) {
        let image = try decoder.decode(jpeg, channels: channels)
        prepare(image, into: dest)
    }

    /// JPEG bytes → model input, HWC Float32, written to `dest` (``elementCount`` floats).
    public func prepare(_ jpeg: Data, into dest: UnsafeMutablePointer<Float>) throws(ImageError) {
        let image = try decoder.decode(jpeg, channels: channels)
        prepare(image, into: dest)
    }

    /// JPEG bytes → model input, HWC Float32 (``elementCount`` floats).
    public func prepare(_ jpeg: [UInt8]) throws(ImageError) -> [Float] {
        let image = try decoder.decode(jpeg, channels: channels)
        return prepare(image)
    }

    /// JPEG bytes → model input, HWC Float32 (``elementCount`` floats).
    public func prepare(_ jpeg: Data) throws(ImageError) -> [Float] {
        let image = try decoder.decode(jpeg, channels: channels)
        return prepare(image)
    }

    /// An already decoded image (for example from another decoder) → model input.
    /// `image.channels` must equal ``channels``.
    public func prepare(_ image: DecodedImage) -> [Float] {
        let count = elementCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            prepare(image, into: buffer.baseAddress!)
            initialized = count
        }
    }

    /// An already decoded image → model input, written to `dest` (``elementCount`` floats).
    /// `image.channels` must equal ``channels``.
    public func prepare(_ image: DecodedImage, into dest: UnsafeMutablePointer<Float>) {
        precondition(image.channels == channels,
                     "ImagePreprocessor: image has \(image.channels) channels, model expects \(channels)")
        switch mode {
        case .inception:
            // TF: resize(float32(u8) / 255) * 2 - 1. x * 2 is exact, so one rounding as in TF.
            resizeBilinear(image, toWidth: width, height: height, into: dest, inputDivisor: 255, scale: 2, offset: -1)
        case .mobilenet:
            resizeBilinear(image, toWidth: width, height: height, into: dest)
            for i in 0..<elementCount {
                let q = min(max(dest[i].rounded(.toNearestOrEven), 0), 255)
                dest[i] = (q - 128) / 128
            }
        case .raw:
            resizeBilinear(image, toWidth: width, height: height, into: dest)
        }
    }
}
