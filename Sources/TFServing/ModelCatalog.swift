import Synchronization

/// The models and versions the running workers serve, merged from their
/// ``ServableAnnouncement``s. A version's state is the best any worker
/// reports (one available copy makes it available); a load error is reported
/// while no worker has the version available.
public final class ModelCatalog: Sendable {
    /// A version a request can be sent to.
    public struct Resolved: Sendable, Equatable {
        public var model: String
        public var version: Int64
        public var info: ServableAnnouncement.Version

        public init(model: String, version: Int64, info: ServableAnnouncement.Version) {
            self.model = model
            self.version = version
            self.info = info
        }
    }

    /// One line of a model's status.
    public struct VersionStatus: Sendable, Equatable {
        public var version: Int64
        public var state: ServableAnnouncement.State
        public var error: String?
    }

    private let announcements = Mutex<[String: ServableAnnouncement]>([:])

    public init() {}

    /// Records (or replaces) a worker's announcement.
    public func update(_ announcement: ServableAnnouncement) {
        announcements.withLock { $0[announcement.worker] = announcement }
    }

    /// Forgets a worker (it stopped, or its will message arrived).
    public func remove(worker: String) {
        _ = announcements.withLock { $0.removeValue(forKey: worker) }
    }

    /// Names of every model some worker announces, sorted.
    public var modelNames: [String] {
        announcements.withLock { Set($0.values.flatMap { $0.models.map(\.name) }).sorted() }
    }

    /// Workers currently announcing.
    public var workerCount: Int { announcements.withLock { $0.count } }

    /// Every worker's current announcement, by worker id.
    public var workers: [ServableAnnouncement] {
        announcements.withLock { $0.values.sorted { $0.worker < $1.worker } }
    }

    /// The merged versions of `model`, newest first, with its labels; nil if
    /// no worker announces it.
    public func merged(_ model: String) -> (versions: [ServableAnnouncement.Version], labels: [String: Int64])? {
        announcements.withLock { all in
            var best: [Int64: ServableAnnouncement.Version] = [:]
            var labels: [String: Int64] = [:]
            var found = false
            for announcement in all.values.sorted(by: { $0.worker < $1.worker }) {
                for entry in announcement.models where entry.name == model {
                    found = true
                    labels.merge(entry.labels) { current, _ in current }
                    for version in entry.versions {
                        if let current = best[version.version], current.state >= version.state { continue }
                        best[version.version] = version
                    }
                }
            }
            guard found else { return nil }
            return (best.values.sorted { $0.version > $1.version }, labels)
        }
    }

    /// TF Serving's model status: every version, or the selected one.
    public func status(model: String, _ selector: VersionSelector) throws(TFServingError) -> [VersionStatus] {
        guard let (versions, labels) = merged(model), !versions.isEmpty else {
            throw TFServingError(.notFound, "Could not find any versions of model \(model)")
        }
        let statuses = versions.map { VersionStatus(version: $0.version, state: $0.state,
                                                    error: $0.state == .available ? nil : $0.error) }
        switch selector {
        case .latest: return statuses
        case .version(let v):
            guard let match = statuses.first(where: { $0.version == v }) else {
                throw TFServingError(.notFound, "Could not find version \(v) of model \(model)")
            }
            return [match]
        case .label(let label):
            guard let v = labels[label] else {
                throw TFServingError(.notFound, "Unrecognized servable version label: \(label)")
            }
            guard let match = statuses.first(where: { $0.version == v }) else {
                throw TFServingError(.notFound, "Could not find version \(v) of model \(model)")
            }
            return [match]
        }
    }

    /// The available version a request for `model` goes to.
    public func resolve(model: String, _ selector: VersionSelector) throws(TFServingError) -> Resolved {
        guard let (versions, labels) = merged(model) else {
            throw TFServingError(.notFound, "Servable not found for request: \(selector.request(model: model))")
        }
        let available = versions.filter { $0.state == .available }
        let chosen: ServableAnnouncement.Version?
        switch selector {
        case .latest: chosen = available.first
        case .version(let v): chosen = available.first { $0.version == v }
        case .label(let label):
            guard let v = labels[label] else {
                throw TFServingError(.notFound, "Unrecognized servable version label: \(label)")
            }
            guard let match = available.first(where: { $0.version == v }) else {
                throw TFServingError(.notFound, "Servable not found for request: Specific(\(model), \(v)) (label \(label) names a version that is not available)")
            }
            chosen = match
        }
        guard let chosen else {
            throw TFServingError(.notFound, "Servable not found for request: \(selector.request(model: model))")
        }
        return Resolved(model: model, version: chosen.version, info: chosen)
    }
}
