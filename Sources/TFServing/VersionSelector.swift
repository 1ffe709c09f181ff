/// How a request names a model version: not at all (the latest available),
/// by number, or by label.
public enum VersionSelector: Sendable, Equatable, CustomStringConvertible {
    case latest
    case version(Int64)
    case label(String)

    /// TF Serving's wording of a request in "not found" messages.
    public func request(model: String) -> String {
        switch self {
        case .latest, .label: "Latest(\(model))"
        case .version(let v): "Specific(\(model), \(v))"
        }
    }

    public var description: String {
        switch self {
        case .latest: "latest"
        case .version(let v): "version \(v)"
        case .label(let l): "label \(l)"
        }
    }
}
