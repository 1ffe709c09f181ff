/// A TF Serving REST path, parsed the way TF Serving matches it
/// (keywords case-insensitive):
/// - `GET /v1/models/{name}[/versions/{v}|/labels/{l}]` (status)
/// - `GET /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata`
/// - `POST /v1/models/{name}[/versions/{v}|/labels/{l}]:{predict|classify|regress}`
public struct RESTPath: Sendable, Equatable {
    public enum Action: String, Sendable, Equatable {
        case status, metadata, predict, classify, regress
    }

    public var model: String
    public var selector: VersionSelector
    public var action: Action

    public init(model: String, selector: VersionSelector, action: Action) {
        self.model = model
        self.selector = selector
        self.action = action
    }

    /// Parses `path` (without the query) for `method` ("GET" or "POST");
    /// nil if it is not a TF Serving route.
    public init?(method: String, path: String) {
        var rest = Substring(path)
        guard Self.consume("/v1/models/", from: &rest) else { return nil }
        var verb: Action?
        if method == "POST" {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            guard let action = Action(rawValue: rest[rest.index(after: colon)...].lowercased()),
                  [.predict, .classify, .regress].contains(action) else { return nil }
            verb = action
            rest = rest[..<colon]
        } else if method != "GET" {
            return nil
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let name = parts.first, !name.isEmpty, !name.contains(":") else { return nil }
        var index = 1
        var selector = VersionSelector.latest
        if parts.count >= 3 {
            switch parts[1].lowercased() {
            case "versions":
                guard let v = Int64(parts[2]), v >= 0, parts[2].allSatisfy(\.isNumber) else { return nil }
                selector = .version(v)
                index = 3
            case "labels":
                guard !parts[2].isEmpty, !parts[2].contains(":") else { return nil }
                selector = .label(parts[2])
                index = 3
            default: break
            }
        }
        let tail = parts[index...]
        if let verb {
            guard tail.isEmpty else { return nil }
            self.init(model: name, selector: selector, action: verb)
        } else if tail.isEmpty {
            self.init(model: name, selector: selector, action: .status)
        } else if tail.count == 1, tail.first!.lowercased() == "metadata" {
            self.init(model: name, selector: selector, action: .metadata)
        } else {
            return nil
        }
    }

    private static func consume(_ prefix: String, from text: inout Substring) -> Bool {
        guard text.count >= prefix.count, text.prefix(prefix.count).lowercased() == prefix else { return false }
        text = text.dropFirst(prefix.count)
        return true
    }
}
