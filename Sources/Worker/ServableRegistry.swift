import Synchronization
import TFServing

/// The versions this worker knows, their lifecycle state, and the loaded
/// ones. Read by request handling (which version serves a request), written
/// by the ``ServableManager``; safe from any thread.
public final class ServableRegistry: Sendable {
    private struct Entry {
        var state: ServableAnnouncement.State
        var error: String?
        var servable: LoadedServable?
        /// What the announcement says about a version that is not loaded.
        var lastKnown: ServableAnnouncement.Version?
    }

    private struct Table {
        /// Model names in configuration order.
        var models: [String] = []
        var labels: [String: [String: Int64]] = [:]
        var entries: [String: [Int64: Entry]] = [:]
    }

    private let table = Mutex(Table())

    public init() {}

    /// The configured models and their labels (from the repository).
    func configure(models: [(name: String, labels: [String: Int64])]) {
        table.withLock { t in
            t.models = models.map(\.name)
            t.labels = Dictionary(models.map { ($0.name, $0.labels) }, uniquingKeysWith: { a, _ in a })
            for name in t.models where t.entries[name] == nil { t.entries[name] = [:] }
        }
    }

    func setLoading(_ model: String, _ version: Int64) {
        table.withLock { $0.entries[model, default: [:]][version] = Entry(state: .loading) }
    }

    func setAvailable(_ servable: LoadedServable) {
        table.withLock {
            $0.entries[servable.name, default: [:]][servable.version] =
                Entry(state: .available, servable: servable, lastKnown: servable.announced(.available))
        }
    }

    func setFailed(_ model: String, _ version: Int64, error: String) {
        table.withLock { $0.entries[model, default: [:]][version] = Entry(state: .end, error: error) }
    }

    /// Takes a version out of service; it is reported `END` from then on.
    @discardableResult
    func unload(_ model: String, _ version: Int64) -> LoadedServable? {
        table.withLock { t in
            guard var entry = t.entries[model]?[version] else { return nil }
            let servable = entry.servable
            entry.servable = nil
            entry.state = .end
            if entry.error == nil { entry.lastKnown = entry.lastKnown ?? servable?.announced(.end) }
            t.entries[model]?[version] = entry
            return servable
        }
    }

    /// Versions that are loaded or loading (not ended).
    func live(_ model: String) -> Set<Int64> {
        table.withLock { Set(($0.entries[model] ?? [:]).filter { $0.value.state != .end }.keys) }
    }

    /// The loaded version `version` of `model`, or its newest loaded version.
    public func servable(_ model: String, version: Int64? = nil) -> LoadedServable? {
        table.withLock { t in
            guard let entries = t.entries[model] else { return nil }
            if let version { return entries[version]?.servable }
            return entries.filter { $0.value.servable != nil }.max { $0.key < $1.key }?.value.servable
        }
    }

    /// Why `version` of `model` (or its latest) cannot be served here.
    public func refusal(model: String, version: Int64?) -> String {
        table.withLock { t in
            let served = t.models.filter { name in (t.entries[name] ?? [:]).contains { $0.value.servable != nil } }
            guard let entries = t.entries[model], served.contains(model) else {
                return "unknown model '\(model)': this worker serves \(served.map { "'\($0)'" }.joined(separator: ", "))"
            }
            let versions = entries.filter { $0.value.servable != nil }.keys.sorted()
            return "unknown version \(version ?? -1) of model '\(model)': served versions: \(versions)"
        }
    }

    /// Every loaded version, newest first per model.
    public var available: [LoadedServable] {
        table.withLock { t in
            t.models.flatMap { name in
                (t.entries[name] ?? [:]).compactMap(\.value.servable).sorted { $0.version > $1.version }
            }
        }
    }

    /// What this worker announces.
    public func announcement(worker: String) -> ServableAnnouncement {
        table.withLock { t in
            ServableAnnouncement(worker: worker, models: t.models.map { name in
                let versions = (t.entries[name] ?? [:]).sorted { $0.key > $1.key }.map { version, entry in
                    var info = entry.servable?.announced(entry.state) ?? entry.lastKnown
                        ?? ServableAnnouncement.Version(version: version, state: entry.state)
                    info.state = entry.state
                    info.error = entry.error
                    return info
                }
                return .init(name: name, versions: versions, labels: t.labels[name] ?? [:])
            })
        }
    }
}
