import Inception
import TFServing

/// One model version loaded in this worker: the weights (shared, read-only)
/// and what requests and announcements need to know about it.
public final class LoadedServable: Sendable {
    public let name: String
    public let version: Int64
    public let model: Model
    public let labels: Labels
    /// Images for models of an H×W×3 input; tensors of the model's own
    /// input shape for the others (LeNet's 28×28×1, the quickstart's 28×28).
    public let kind: ServableAnnouncement.InputKind

    public init(name: String, version: Int64, model: Model, labels: Labels?) {
        self.name = name
        self.version = version
        self.model = model
        self.labels = labels ?? .indices(model.outputCount)
        kind = model.takesImages && model.inputShape.channels == 3 ? .image : .tensor
    }

    /// The announcement entry for this version in `state`.
    public func announced(_ state: ServableAnnouncement.State) -> ServableAnnouncement.Version {
        .init(version: version, state: state, kind: kind, inputShape: model.inputDims,
              classes: model.outputCount, classNames: labels.names, tensorSignature: tensorSignature)
    }

    /// A tensor model's signature, as Keras exports the model.
    private var tensorSignature: ServableAnnouncement.TensorSignature? {
        guard kind == .tensor, let export = model.export else { return nil }
        return .init(keys: export.signatureKeys, input: export.inputName, output: export.outputName,
                     outputShape: model.outputDims, flatten: export.flatten.map { flatten in
                         switch flatten {
                         case .anySize: .anySize
                         case .firstDimension: .firstDimension
                         }
                     })
    }
}
