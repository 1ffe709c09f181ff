import TFServing

/// What the ingress tells clients about the model it forwards to: enough for
/// `/metadata` and `/label` without loading weights into the ingress.
public struct ModelDescription: Sendable {
    public var name: String
    public var version: Int
    /// Height, width, channels of the model's input.
    public var inputShape: [Int]
    public var labels: [String]

    /// Version 0, as a single model file has no version folder (see docs/tf-serving.md).
    public init(name: String, version: Int = 0, inputShape: [Int], labels: [String]) {
        self.name = name
        self.version = version
        self.inputShape = inputShape
        self.labels = labels
    }

    /// The model as the catalog would resolve it from a worker's announcement.
    public var resolved: ModelCatalog.Resolved {
        ModelCatalog.Resolved(model: name, version: Int64(version),
                              info: ServableAnnouncement.Version(version: Int64(version), state: .available, kind: .image,
                                                                 inputShape: inputShape, classes: labels.count,
                                                                 classNames: labels))
    }
}
