import Foundation
import Inception
import Logging
import ModelRepository

/// Keeps a ``ServableRegistry`` in step with the model repository: a version
/// the policy selects is loaded (on a thread of its own, not the cooperative
/// pool) and put in service; one it no longer selects is taken out of
/// service after its replacement is available, as TF Serving's
/// availability-preserving policy does. A version that fails to load stays
/// `END` with its error and is not retried until it leaves the selection and
/// comes back.
final class ServableManager: @unchecked Sendable {
    // Sendable: `apply` is only ever called from one task at a time (the
    // repository watcher's), which owns `failed`.
    let registry: ServableRegistry
    /// A labels file for every model (the `--labels` option), else each
    /// version's own, found beside its model file.
    private let labelsPath: String?
    private let logger: Logger
    /// Versions that failed to load, by model: not retried while still selected.
    private var failed: [String: Set<Int64>] = [:]

    init(registry: ServableRegistry, labelsPath: String?, logger: Logger) {
        self.registry = registry
        self.labelsPath = labelsPath
        self.logger = logger
    }

    /// Loads and unloads until the registry matches `snapshot`; calls
    /// `changed` after every state change so the worker can announce and
    /// resubscribe.
    func apply(_ snapshot: RepositorySnapshot, changed: @Sendable () async -> Void) async {
        registry.configure(models: snapshot.models.map { ($0.source.name, $0.source.labels) })
        let configured = Set(snapshot.models.map(\.source.name))
        failed = failed.filter { configured.contains($0.key) }
        var retire: [(String, Int64)] = []
        for entry in snapshot.models {
            let name = entry.source.name
            let wanted = Set(entry.servables.map(\.version))
            failed[name] = failed[name]?.intersection(wanted)
            let live = registry.live(name)
            for servable in entry.servables where !live.contains(servable.version) && !(failed[name]?.contains(servable.version) ?? false) {
                registry.setLoading(name, servable.version)
                await changed()
                switch await load(servable) {
                case .success(let loaded):
                    registry.setAvailable(loaded)
                    logger.info("serving \(name) version \(servable.version)", metadata: ["path": "\(servable.path)"])
                case .failure(let error):
                    failed[name, default: []].insert(servable.version)
                    registry.setFailed(name, servable.version, error: "\(error)")
                    logger.error("cannot load \(name) version \(servable.version): \(error)")
                }
                await changed()
            }
            retire += live.subtracting(wanted).map { (name, $0) }
        }
        for servable in registry.available where !configured.contains(servable.name) {
            retire.append((servable.name, servable.version))
        }
        for (name, version) in retire {
            registry.unload(name, version)
            logger.info("unloaded \(name) version \(version)")
        }
        if !retire.isEmpty { await changed() }
    }

    private func load(_ servable: RepositorySnapshot.Servable) async -> Result<LoadedServable, any Error> {
        let labelsPath = labelsPath
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result {
                    let path = try servable.modelFile.get()
                    let model = try Model(contentsOf: path)
                    let labels = try Labels.load(labelsPath, forModel: path, classes: model.outputCount)
                    return LoadedServable(name: servable.model, version: servable.version, model: model, labels: labels)
                })
            }
            thread.name = "conveyor-loader"
            thread.stackSize = 4 << 20
            thread.start()
        }
    }
}
