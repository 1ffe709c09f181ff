import Foundation

extension KerasFile {
    /// Reads a Keras 3 `.keras` archive: a ZIP of `config.json` (the model's
    /// serialized config), `metadata.json` (the Keras version) and
    /// `model.weights.h5`.
    ///
    /// The weights follow Keras 3's `saving_lib` layout: the layers of
    /// `model.layers`, in the config's order, each under
    /// `layers/<its class in snake case>` (the second Dense `dense_1`, the
    /// third `dense_2`: numbered by class, not by layer name), with its
    /// variables in `vars/0`, `vars/1`, … in the order the layer makes them
    /// (kernel then bias; gamma, beta, moving mean, moving variance).
    /// tf.keras 2.13–2.15 wrote `_layer_checkpoint_dependencies` for
    /// `layers`. Every array is checked against the shape its layer needs.
    init(archive path: String) throws {
        let zip = try ZipArchive(path: path)
        guard zip.entry("config.json") != nil else {
            throw ModelError("\(path) is a ZIP archive but not a Keras model (no config.json)")
        }
        let config = try KerasModelConfig(json: String(decoding: try zip.contents(of: "config.json"), as: UTF8.self))
        var version: String?
        if zip.entry("metadata.json") != nil,
           let metadata = try JSONSerialization.jsonObject(with: Data(try zip.contents(of: "metadata.json"))) as? [String: Any] {
            version = metadata["keras_version"] as? String
        }
        guard zip.entry("model.weights.h5") != nil else {
            throw ModelError("\(path) has no model.weights.h5 (a Keras archive saved with its weights elsewhere is not supported)")
        }
        let weights = try zip.withContents(of: "model.weights.h5") { bytes in
            try Self.archiveWeights(HDF5File(image: bytes, name: "\(path):model.weights.h5"), config: config)
        }
        self.init(config: config, weights: weights, export: KerasExport(config: config, kerasVersion: version, defaultMajor: 3))
    }

    /// The arrays of every layer with weights, by layer name.
    private static func archiveWeights(_ file: HDF5File, config: KerasModelConfig) throws -> [String: [WeightArray]] {
        var groups: [String: String] = [:]
        var used: [String: Int] = [:]
        for (name, className) in config.layerClasses {
            // Keras's `_get_unique_name`: the first of a class is bare, later ones are numbered from 1.
            let base = snakeCase(className)
            let path: String
            if let count = used[base] {
                used[base] = count + 1
                path = "\(base)_\(count + 1)"
            } else {
                used[base] = 0
                path = base
            }
            groups[name] = path
        }
        var weights: [String: [WeightArray]] = [:]
        for spec in config.specs where spec.hasWeights {
            guard let path = groups[spec.name] else { throw ModelError("layer '\(spec.name)' is not in the layer list") }
            let vars = ["layers/\(path)/vars", "_layer_checkpoint_dependencies/\(path)/vars"].first { file.exists($0) }
            guard let vars else {
                throw ModelError("layer '\(spec.name)': no weights in \(file.path) (looked for layers/\(path)/vars)")
            }
            if file.hasAttribute("name", at: vars), let stored = try? file.stringAttribute("name", at: vars), stored != spec.name {
                throw ModelError("layer '\(spec.name)': \(vars) in \(file.path) holds the weights of layer '\(stored)'")
            }
            var arrays: [WeightArray] = []
            while file.exists("\(vars)/\(arrays.count)") {
                let (shape, values) = try file.readFloats("\(vars)/\(arrays.count)")
                arrays.append(WeightArray(name: "\(vars)/\(arrays.count)", shape: shape, values: values))
            }
            weights[spec.name] = arrays
        }
        return weights
    }

    /// Keras's `naming.to_snake_case`: "Dense" → "dense", "Conv2D" → "conv2d",
    /// "BatchNormalization" → "batch_normalization", "ReLU" → "re_lu".
    package static func snakeCase(_ name: String) -> String {
        let word = name.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == "_" }
        var characters = Array(String(String.UnicodeScalarView(word)))
        // (.)([A-Z][a-z]+) → \1_\2: an underscore before each capitalised word but the first character.
        var out: [Character] = []
        for (i, c) in characters.enumerated() {
            if i > 0, c.isUppercase, i + 1 < characters.count, characters[i + 1].isLowercase { out.append("_") }
            out.append(c)
        }
        characters = out
        // ([a-z])([A-Z]) → \1_\2
        out = []
        for (i, c) in characters.enumerated() {
            if i > 0, c.isUppercase, characters[i - 1].isLowercase { out.append("_") }
            out.append(c)
        }
        return String(out).lowercased()
    }
}
