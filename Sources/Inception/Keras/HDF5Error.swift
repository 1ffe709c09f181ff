/// A failure while reading an HDF5 file.
///
/// `message` says what failed and on which file (and, where it applies, which
/// object inside it), followed by the innermost message from libhdf5's error
/// stack when there is one, e.g.
/// `could not open HDF5 file: /x/model.h5 (truncated file: eof = 4096, ...)`.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    /// What failed, including the file path.
    public let message: String

    /// Creates an error with the given message.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "HDF5Error: \(message)" }
}
