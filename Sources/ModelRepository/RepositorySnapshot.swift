/// What the repository holds at one moment: for every configured model, the
/// versions its policy selects (newest first) and its labels.
public struct RepositorySnapshot: Sendable, Equatable {
    /// One version to serve.
    public struct Servable: Sendable, Equatable, Hashable {
        public var model: String
        public var version: Int64
        /// The version folder.
        public var path: String
        /// The HDF5 file, or why the version cannot load.
        public var modelFile: Result<String, ModelConfigError>

        public init(model: String, version: Int64, path: String, modelFile: Result<String, ModelConfigError>) {
            self.model = model
            self.version = version
            self.path = path
            self.modelFile = modelFile
        }

        public static func == (a: Self, b: Self) -> Bool {
            a.model == b.model && a.version == b.version && a.path == b.path && a.modelFile == b.modelFile
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(model)
            hasher.combine(version)
            hasher.combine(path)
        }
    }

    public struct Model: Sendable, Equatable {
        public var source: ModelSource
        /// Selected versions, newest first.
        public var servables: [Servable]

        public init(source: ModelSource, servables: [Servable]) {
            self.source = source
            self.servables = servables
        }
    }

    /// Models in configuration order.
    public var models: [Model]

    public init(models: [Model]) { self.models = models }

    /// Scans every source's base path and applies its policy.
    public static func scan(_ sources: [ModelSource]) -> RepositorySnapshot {
        RepositorySnapshot(models: sources.map { source in
            let found = VersionDirectory.scan(source.basePath)
            let selected = Set(source.policy.select(from: found.map(\.version)))
            let servables = found.filter { selected.contains($0.version) }.map {
                Servable(model: source.name, version: $0.version, path: $0.path, modelFile: $0.modelFile)
            }
            return Model(source: source, servables: servables)
        })
    }

    /// Every selected version of every model.
    public var servables: [Servable] { models.flatMap(\.servables) }

    public func model(named name: String) -> Model? { models.first { $0.source.name == name } }
}
