extension ModelSignatures {
    /// A tensor model's signatures: its export's, each alike (an input
    /// `[-1] + inputShape` and an output `[-1] + outputShape`, DT_FLOAT,
    /// method predict). A worker that announces no export is described by
    /// its input and output sizes under `input` and `output`.
    static func tensorSignatures(for info: ServableAnnouncement.Version) -> [String: Signature] {
        let export = info.tensorSignature
            ?? .init(keys: [Signature.defaultKey], input: "input", output: "output", outputShape: [info.classes])
        let signature = Signature(inputs: [.init(name: export.input, dtype: .float, shape: [-1] + info.inputShape)],
                                  outputs: [.init(name: export.output, dtype: .float, shape: [-1] + export.outputShape)])
        return Dictionary(export.keys.map { ($0, signature) }, uniquingKeysWith: { first, _ in first })
    }
}
