/// One model as configured: where its versions live and how they are chosen.
/// Made from `--model_name`/`--model_base_path` or from one `config { … }`
/// entry of a TF Serving model config file.
public struct ModelSource: Sendable, Equatable {
    /// The name clients use (`/v1/models/<name>`, MQTT topic segment).
    public var name: String
    /// The directory holding numeric version subdirectories.
    public var basePath: String
    public var policy: VersionPolicy
    /// Version labels (`stable`, `canary`, …) → version.
    public var labels: [String: Int64]

    public init(name: String, basePath: String, policy: VersionPolicy = .latest(1),
                labels: [String: Int64] = [:]) {
        self.name = name
        self.basePath = basePath
        self.policy = policy
        self.labels = labels
    }
}
