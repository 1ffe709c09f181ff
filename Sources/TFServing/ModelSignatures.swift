/// The signatures Conveyor exposes for a served version (see
/// `docs/tf-serving.md`).
///
/// Image models (3-channel input: InceptionV3, MobileNetV2):
/// - `serving_default`: `image` (DT_STRING, encoded JPEG, plain or URL-safe
///   base64 in JSON) → `output_0` (DT_STRING, the top-1 label): the signature
///   of the book's exported InceptionV3 (`serving_fn`, whose single unnamed
///   output TensorFlow calls `output_0`).
/// - `scores`: `image` → `classes` (DT_STRING) and `scores` (DT_FLOAT), the
///   top 5, best first.
/// - `classify` (method classify): the same as `scores`, for `:classify`.
///
/// Tensor models (any other Keras model: the quickstart's 28×28 input,
/// LeNet's 28×28×1, vectors): the signature TF Serving has for the model's
/// SavedModel export, under `serving_default` (and `serve` for Keras 3),
/// with the model's own input and output names and shapes, DT_FLOAT.
public enum ModelSignatures {
    /// Classes returned by the `scores` and `classify` signatures of image models.
    public static let imageTopK = 5

    public static func all(for info: ServableAnnouncement.Version) -> [String: Signature] {
        typealias Spec = Signature.TensorSpec
        switch info.kind {
        case .image:
            let image = Spec(name: "image", dtype: .string, shape: [-1])
            let top = [Spec(name: "classes", dtype: .string, shape: [-1, imageTopK]),
                       Spec(name: "scores", dtype: .float, shape: [-1, imageTopK])]
            return [
                Signature.defaultKey: Signature(inputs: [image],
                                                outputs: [Spec(name: "output_0", dtype: .string, shape: [-1])]),
                "scores": Signature(inputs: [image], outputs: top),
                "classify": Signature(inputs: [image], outputs: top, method: Signature.classifyMethod),
            ]
        case .tensor:
            return tensorSignatures(for: info)
        }
    }

    /// The named signature, or TF Serving's error for a missing one.
    public static func signature(_ name: String, for info: ServableAnnouncement.Version) throws(TFServingError) -> Signature {
        let key = name.isEmpty ? Signature.defaultKey : name
        guard let signature = all(for: info)[key] else {
            throw .invalid("Serving signature name: \"\(key)\" not found in signature def")
        }
        return signature
    }
}
