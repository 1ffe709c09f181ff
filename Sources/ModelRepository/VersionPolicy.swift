/// Which of the versions found under a model's base path are served, as in TF
/// Serving's `model_version_policy`.
public enum VersionPolicy: Sendable, Equatable {
    /// The newest `count` versions (TF Serving's default is `latest` with 1).
    case latest(Int)
    /// Every version found.
    case all
    /// Exactly these versions (those that exist).
    case specific(Set<Int64>)

    /// The versions to serve out of `available`, newest first.
    public func select(from available: [Int64]) -> [Int64] {
        let newestFirst = available.sorted(by: >)
        switch self {
        case .latest(let count): return Array(newestFirst.prefix(max(count, 1)))
        case .all: return newestFirst
        case .specific(let versions): return newestFirst.filter { versions.contains($0) }
        }
    }
}
