/// REST bodies for model status and metadata, in the JSON that TF Serving
/// prints for its `GetModelStatusResponse` and `GetModelMetadataResponse`
/// (proto3 JSON with default values, int64 as strings).
public enum StatusJSON {
    /// `{"model_version_status": [{"version", "state", "status": {"error_code", "error_message"}}]}`.
    public static func status(_ versions: [ModelCatalog.VersionStatus]) -> JSONValue {
        .object([("model_version_status", .array(versions.map { status in
            .object([
                ("version", .string(String(status.version))),
                ("state", .string(status.state.rawValue)),
                ("status", .object([
                    ("error_code", .string(status.error == nil ? "OK" : "UNKNOWN")),
                    ("error_message", .string(status.error ?? "")),
                ])),
            ])
        }))])
    }

    /// `{"model_spec": {…}, "metadata": {"signature_def": {"signature_def": {…}}}}`.
    public static func metadata(_ resolved: ModelCatalog.Resolved) -> JSONValue {
        let signatures = ModelSignatures.all(for: resolved.info).sorted { $0.key < $1.key }
        return .object([
            ("model_spec", .object([
                ("name", .string(resolved.model)),
                ("signature_name", .string("")),
                ("version", .string(String(resolved.version))),
            ])),
            ("metadata", .object([("signature_def", .object([
                ("signature_def", .object(signatures.map { ($0.key, signatureDef($0.value)) })),
            ]))])),
        ])
    }

    static func signatureDef(_ signature: Signature) -> JSONValue {
        func info(_ spec: Signature.TensorSpec) -> JSONValue {
            .object([
                ("dtype", .string(spec.dtype.rawValue)),
                ("tensor_shape", .object([
                    ("dim", .array(spec.shape.map { .object([("size", .string(String($0))), ("name", .string(""))]) })),
                    ("unknown_rank", .bool(false)),
                ])),
                ("name", .string("\(spec.name):0")),
            ])
        }
        return .object([
            ("inputs", .object(signature.inputs.map { ($0.name, info($0)) })),
            ("outputs", .object(signature.outputs.map { ($0.name, info($0)) })),
            ("method_name", .string(signature.method)),
        ])
    }
}
