/// What one worker serves, published retained on
/// `conveyor/v1/servables/<worker id>` whenever it changes (and cleared with an
/// empty retained message when the worker stops). Ingresses merge these into
/// a ``ModelCatalog`` to answer status and metadata requests and to route
/// predictions to versions that some worker holds.
public struct ServableAnnouncement: Sendable, Codable, Equatable {
    /// A version's lifecycle, TF Serving's `ModelVersionStatus.State`.
    public enum State: String, Sendable, Codable, Comparable, CaseIterable {
        case start = "START"
        case loading = "LOADING"
        case available = "AVAILABLE"
        case unloading = "UNLOADING"
        case end = "END"

        /// The `State` enum value in TF Serving's protos.
        public var number: Int {
            switch self {
            case .start: 10
            case .loading: 20
            case .available: 30
            case .unloading: 40
            case .end: 50
            }
        }

        /// How good a state is when several workers report one version:
        /// available beats loading beats the rest.
        var rank: Int {
            switch self {
            case .available: 4
            case .loading: 3
            case .start: 2
            case .unloading: 1
            case .end: 0
            }
        }

        public static func < (a: State, b: State) -> Bool { a.rank < b.rank }
    }

    /// How a model takes its input.
    public enum InputKind: String, Sendable, Codable {
        /// Encoded images (JPEG bytes), decoded and resized by the worker.
        case image
        /// Numbers: a float tensor of the model's input shape.
        case tensor
    }

    /// A tensor model's signature as Keras exports the model for TF Serving
    /// (see ``Inception/KerasExport``): the keys it is under, its input and
    /// output names, the output's shape per example, and how an input not
    /// shaped `[batch] + inputShape` is still taken.
    public struct TensorSignature: Sendable, Codable, Equatable {
        /// How the model's leading `Flatten` reshapes its input.
        public enum Flatten: String, Sendable, Codable {
            /// To `[-1, n]`: any tensor of a multiple of `n` values, as size / n examples.
            case anySize = "any_size"
            /// To `[d0, n]`: dimension 0 is the batch, the rest holds `n` values per example.
            case firstDimension = "first_dimension"
        }

        /// `serving_default` (and `serve` for a Keras 3 export).
        public var keys: [String]
        public var input: String
        public var output: String
        public var outputShape: [Int]
        /// nil: the input must be shaped `[batch] + inputShape`.
        public var flatten: Flatten?

        public init(keys: [String], input: String, output: String, outputShape: [Int], flatten: Flatten? = nil) {
            self.keys = keys
            self.input = input
            self.output = output
            self.outputShape = outputShape
            self.flatten = flatten
        }
    }

    /// One version of one model on this worker.
    public struct Version: Sendable, Codable, Equatable {
        public var version: Int64
        public var state: State
        /// Why loading failed (state END).
        public var error: String?
        public var kind: InputKind
        /// Per example: height, width, channels for images; the model's
        /// own input shape for tensor models (`[28, 28]`, `[784]`).
        public var inputShape: [Int]
        /// Values per example in the model's output.
        public var classes: Int
        /// The class names results use, by class index.
        public var classNames: [String]
        /// Set for tensor models.
        public var tensorSignature: TensorSignature?

        public init(version: Int64, state: State, error: String? = nil, kind: InputKind = .image,
                    inputShape: [Int] = [], classes: Int = 0, classNames: [String] = [],
                    tensorSignature: TensorSignature? = nil) {
            self.version = version
            self.state = state
            self.error = error
            self.kind = kind
            self.inputShape = inputShape
            self.classes = classes
            self.classNames = classNames
            self.tensorSignature = tensorSignature
        }
    }

    public struct Model: Sendable, Codable, Equatable {
        public var name: String
        public var versions: [Version]
        /// Version labels from the model config.
        public var labels: [String: Int64]

        public init(name: String, versions: [Version], labels: [String: Int64] = [:]) {
            self.name = name
            self.versions = versions
            self.labels = labels
        }
    }

    public var worker: String
    public var models: [Model]

    public init(worker: String, models: [Model]) {
        self.worker = worker
        self.models = models
    }

}
