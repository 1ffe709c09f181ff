import TFServing
import TFServingAPI

extension Tensorflow_Serving_ModelSpec {
    /// The version the spec asks for: a number, a label, or the latest.
    public var selector: VersionSelector {
        switch versionChoice {
        case .version(let v)?: .version(v.value)
        case .versionLabel(let label)? where !label.isEmpty: .label(label)
        default: .latest
        }
    }

    /// The spec of the version that answered.
    public init(model: String, version: Int64, signature: String) {
        self.init()
        name = model
        self.version.value = version
        signatureName = signature
    }
}
