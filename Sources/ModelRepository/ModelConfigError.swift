/// A model configuration that cannot be served, with a message that names
/// the model and the problem.
public struct ModelConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
