/// Loads a model from a Keras HDF5 file: either a full model (a `model_config`
/// attribute plus `model_weights`), whose graph is built from the config, or
/// the official InceptionV3 weights-only file, whose architecture is built in
/// and whose weights are assigned in layer order, as Keras does.
package struct KerasFile {
    package var name: String
    package var specs: [LayerSpec]
    package var output: String
    package var weights: [String: [WeightArray]]

    package init(path: String) throws {
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
            (name, specs, output) = (config.name, config.specs, config.output)
            self.weights = weights
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
            (name, self.specs, output) = ("inception_v3", specs, "predictions")
            self.weights = weights
        }
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
