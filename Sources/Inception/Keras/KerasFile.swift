import Foundation

/// Loads a model from a Keras file: a Keras 3 `.keras` archive (see
/// `KerasFile+Archive.swift`), a full-model HDF5 file (a `model_config`
/// attribute plus `model_weights`), whose graph is built from the config, or
/// the official InceptionV3 weights-only file, whose architecture is built in
/// and whose weights are assigned in layer order, as Keras does.
package struct KerasFile {
    package var name: String
    package var specs: [LayerSpec]
    package var output: String
    package var weights: [String: [WeightArray]]
    /// The input's shape per example, as Keras declares it.
    package var inputDims: [Int]
    /// Dimensions per example of the output.
    package var outputRank: Int
    /// How Keras exports the model for TF Serving; nil for the weights-only
    /// InceptionV3 file, which has no model of its own to export.
    package var export: KerasExport?

    package init(path: String) throws {
        if Self.isZip(path) {
            self = try Self(archive: path)
            return
        }
        let file = try HDF5File(path: path)
        if file.hasAttribute("model_config", at: "/") {
            let config = try KerasModelConfig(json: try file.stringAttribute("model_config", at: "/"))
            let root = file.exists("/model_weights") ? "/model_weights" : "/"
            var weights: [String: [WeightArray]] = [:]
            for spec in config.specs where spec.hasWeights {
                let group = root == "/" ? "/\(spec.name)" : "\(root)/\(spec.name)"
                guard file.exists(group) else {
                    throw ModelError("layer '\(spec.name)': no weights in \(path)")
                }
                weights[spec.name] = try Self.read(file, group: group)
            }
            // Keras 3 writes its legacy `.h5` format with its own config schema and version.
            let version = file.hasAttribute("keras_version", at: "/") ? try? file.stringAttribute("keras_version", at: "/") : nil
            self.init(config: config, weights: weights,
                      export: KerasExport(config: config, kerasVersion: version, defaultMajor: 2))
        } else {
            guard file.hasAttribute("layer_names", at: "/") else {
                throw ModelError("\(path) is neither a Keras model file (no model_config) nor a Keras weights file (no layer_names)")
            }
            let fileLayers = try file.stringsAttribute("layer_names", at: "/")
            var weighted: [(layer: String, arrays: [WeightArray])] = []
            for layer in fileLayers {
                let arrays = try Self.read(file, group: "/\(layer)")
                if !arrays.isEmpty { weighted.append((layer, arrays)) }
            }
            let classes = weighted.last?.arrays.last?.shape.first ?? 1000
            let specs = InceptionV3Architecture.specs(classes: classes)
            let targets = specs.filter(\.hasWeights)
            guard weighted.count == targets.count else {
                throw ModelError("\(path) has \(weighted.count) layers with weights; InceptionV3 has \(targets.count)")
            }
            var weights: [String: [WeightArray]] = [:]
            for (spec, source) in zip(targets, weighted) { weights[spec.name] = source.arrays }
            self.init(name: "inception_v3", specs: specs, output: "predictions", weights: weights,
                      inputDims: [299, 299, 3], outputRank: 1, export: nil)
        }
    }

    init(config: KerasModelConfig, weights: [String: [WeightArray]], export: KerasExport) {
        self.init(name: config.name, specs: config.specs, output: config.output, weights: weights,
                  inputDims: config.inputDims, outputRank: config.outputRank, export: export)
    }

    private init(name: String, specs: [LayerSpec], output: String, weights: [String: [WeightArray]],
                 inputDims: [Int], outputRank: Int, export: KerasExport?) {
        (self.name, self.specs, self.output, self.weights) = (name, specs, output, weights)
        (self.inputDims, self.outputRank, self.export) = (inputDims, outputRank, export)
    }

    /// Whether the file starts like a ZIP archive (a local file header).
    private static func isZip(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)).map { [UInt8]($0) } == [0x50, 0x4B, 0x03, 0x04]
    }

    /// The arrays a layer group lists in its `weight_names`, in that order.
    private static func read(_ file: HDF5File, group: String) throws -> [WeightArray] {
        let names = file.hasAttribute("weight_names", at: group) ? try file.stringsAttribute("weight_names", at: group) : []
        return try names.map { weightName in
            let (shape, values) = try file.readFloats("\(group)/\(weightName)")
            return WeightArray(name: weightName, shape: shape, values: values)
        }
    }
}
