import Inception
import TFServing

/// One model version loaded in this worker: the weights (shared, read-only)
/// and what requests and announcements need to know about it.
public final class LoadedServable: Sendable {
    public let name: String
    public let version: Int64
    public let model: Model
    public let labels: Labels
    /// Images for 3-channel models; number tensors for 1-channel ones (LeNet).
    public let kind: ServableAnnouncement.InputKind

    public init(name: String, version: Int64, model: Model, labels: Labels?) {
        self.name = name
        self.version = version
        self.model = model
        self.labels = labels ?? .indices(model.outputCount)
        kind = model.inputShape.channels == 3 ? .image : .tensor
    }

    /// The announcement entry for this version in `state`.
    public func announced(_ state: ServableAnnouncement.State) -> ServableAnnouncement.Version {
        let s = model.inputShape
        return .init(version: version, state: state, kind: kind, inputShape: [s.height, s.width, s.channels],
                     classes: model.outputCount, classNames: labels.names)
    }
}
