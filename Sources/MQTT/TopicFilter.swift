/// MQTT topic filters, matched in Swift (so that matching can run under the client's state
/// lock): `+` matches one level (an empty one too), `#` the rest (the parent level too), and
/// a topic starting with `$` is not matched by a filter starting with a wildcard.
enum TopicFilter {
    /// Whether `topic` matches `filter` (a filter without a `$share/<group>/` prefix).
    static func matches(_ topic: String, filter: String) -> Bool {
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        if t.first?.hasPrefix("$") == true, let first = f.first, first == "+" || first == "#" { return false }
        for (i, level) in f.enumerated() {
            if level == "#" { return true }
            guard i < t.count else { return false }
            if level != "+" && level != t[i] { return false }
        }
        return f.count == t.count
    }

    /// The filter topics are matched against: `filter` without a `$share/<group>/` prefix
    /// (the broker shares the messages; each one that arrives matches the rest).
    static func local(_ filter: String) -> String {
        guard filter.hasPrefix("$share/") else { return filter }
        let rest = filter.dropFirst("$share/".count)
        guard let slash = rest.firstIndex(of: "/") else { return filter }
        return String(rest[rest.index(after: slash)...])
    }
}
