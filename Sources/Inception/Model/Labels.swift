import Foundation

/// Class names for a model's outputs. A JSON array of strings or a text file
/// with one name per line. When the file has one more entry than the model
/// has classes, the first entry is a "background" placeholder and class i is
/// entry i+1 (the ImageNet convention of `image_net_labels.json`).
public struct Labels: Sendable, Equatable {
    /// Name of class i.
    public let names: [String]
    /// The file the names came from, if any.
    public private(set) var source: String?

    public init(names: [String]) { self.names = names }

    /// Reads a labels file and aligns it with a model of `classes` outputs.
    public init(contentsOf path: String, classes: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError("cannot read labels file \(path)")
        }
        var entries: [String]
        if let list = try? JSONSerialization.jsonObject(with: data) as? [String] {
            entries = list
        } else if let text = String(data: data, encoding: .utf8) {
            entries = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            while entries.last == "" { entries.removeLast() }
        } else {
            throw ModelError("labels file \(path) is neither a JSON string array nor UTF-8 text")
        }
        if entries.count == classes + 1 { entries.removeFirst() }
        guard entries.count == classes else {
            throw ModelError("labels file \(path) has \(entries.count) entries; the model has \(classes) classes")
        }
        names = entries
        source = path
    }

    /// The labels for a model: the file `path` if given, else the one
    /// `defaultPath` finds; nil when there is none.
    public static func load(_ path: String?, forModel modelPath: String, classes: Int) throws -> Labels? {
        guard let file = path ?? defaultPath(forModel: modelPath, classes: classes) else { return nil }
        return try Labels(contentsOf: file, classes: classes)
    }

    /// Digits "0"…"n-1" (or "class i") when no labels file is given.
    public static func indices(_ classes: Int) -> Labels {
        Labels(names: (0..<classes).map { classes <= 10 ? "\($0)" : "class \($0)" })
    }

    public subscript(_ i: Int) -> String { names.indices.contains(i) ? names[i] : "class \(i)" }

    /// The labels file to use for a model when none is named: `CONVEYOR_LABELS`,
    /// then `labels.txt`/`labels.json` beside the model, then, for ImageNet-sized
    /// outputs, `data/image_net_labels.json` in a folder above the model's.
    public static func defaultPath(forModel modelPath: String, classes: Int,
                                   environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["CONVEYOR_LABELS"], !path.isEmpty { return path }
        let fm = FileManager.default
        var dir = URL(fileURLWithPath: modelPath).deletingLastPathComponent()
        for name in ["labels.txt", "labels.json"] where fm.fileExists(atPath: dir.appendingPathComponent(name).path) {
            return dir.appendingPathComponent(name).path
        }
        guard classes == 1000 || classes == 1001 else { return nil }
        for _ in 0..<3 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("data/image_net_labels.json").path
            if fm.fileExists(atPath: candidate) { return candidate }
        }
        return nil
    }
}
