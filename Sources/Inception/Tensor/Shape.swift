/// The shape of one image's activation: height × width × channels (NHWC without N).
/// Vectors are 1 × 1 × C.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(height: Int, width: Int, channels: Int) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// A vector of `count` values.
    public init(vector count: Int) { self.init(height: 1, width: 1, channels: count) }

    /// Values per image.
    public var count: Int { height * width * channels }
    /// Pixels per image.
    public var pixels: Int { height * width }

    public var description: String { "\(height)×\(width)×\(channels)" }
}
