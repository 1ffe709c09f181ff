import Foundation
import SwiftProtobuf
import TFServingAPI

/// Reads TF Serving's model config file (`--model_config_file`): a
/// `ModelServerConfig` in protobuf text format with a `model_config_list`.
///
/// ```
/// model_config_list {
///   config {
///     name: "inception_v3"
///     base_path: "/models/inception_v3"
///     model_platform: "tensorflow"
///     model_version_policy { latest { num_versions: 2 } }
///     version_labels { key: "stable" value: 1 }
///   }
/// }
/// ```
///
/// A relative `base_path` is taken relative to the config file's folder.
public enum ModelConfigFile {
    /// Platforms accepted in `model_platform` (empty means unspecified).
    public static let platforms: Set<String> = ["", "tensorflow", "keras"]

    /// Parses and validates the file at `path`.
    public static func load(_ path: String) throws -> [ModelSource] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ModelConfigError("cannot read model config file \(path): \(error.localizedDescription)")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, relativeTo: folder)
    }

    /// Parses and validates config text; relative base paths are resolved
    /// against `folder`.
    public static func parse(_ text: String, relativeTo folder: String) throws -> [ModelSource] {
        let config: Tensorflow_Serving_ModelServerConfig
        do {
            config = try Tensorflow_Serving_ModelServerConfig(textFormatString: text)
        } catch {
            throw ModelConfigError("model config is not valid ModelServerConfig text: \(error)")
        }
        guard case .modelConfigList(let list)? = config.config else {
            throw ModelConfigError("model config has no model_config_list")
        }
        var sources: [ModelSource] = []
        var names = Set<String>()
        for entry in list.config {
            let source = try source(from: entry, relativeTo: folder)
            guard names.insert(source.name).inserted else {
                throw ModelConfigError("model \"\(source.name)\" is configured twice")
            }
            sources.append(source)
        }
        return sources
    }

    private static func source(from entry: Tensorflow_Serving_ModelConfig,
                               relativeTo folder: String) throws -> ModelSource {
        let name = entry.name
        guard ModelName.isValid(name) else {
            throw ModelConfigError("model name \"\(name)\" is not valid: use 1–64 characters of [A-Za-z0-9_.-]")
        }
        guard !entry.basePath.isEmpty else { throw ModelConfigError("model \"\(name)\" has no base_path") }
        guard platforms.contains(entry.modelPlatform) else {
            throw ModelConfigError("model \"\(name)\": model_platform \"\(entry.modelPlatform)\" is not supported (use \"tensorflow\" or \"keras\")")
        }
        var policy = VersionPolicy.latest(1)
        switch entry.modelVersionPolicy.policyChoice {
        case .latest(let latest)?: policy = .latest(latest.numVersions == 0 ? 1 : Int(latest.numVersions))
        case .all?: policy = .all
        case .specific(let specific)?:
            guard !specific.versions.isEmpty else {
                throw ModelConfigError("model \"\(name)\": specific version policy lists no versions")
            }
            policy = .specific(Set(specific.versions))
        case nil: break
        }
        for (label, version) in entry.versionLabels {
            guard VersionLabel.isValid(label) else {
                throw ModelConfigError("model \"\(name)\": version label \"\(label)\" must match [a-zA-Z0-9_]+")
            }
            guard version >= 0 else {
                throw ModelConfigError("model \"\(name)\": version label \"\(label)\" names version \(version)")
            }
        }
        let base = entry.basePath.hasPrefix("/") ? entry.basePath
            : URL(fileURLWithPath: folder).appendingPathComponent(entry.basePath).standardizedFileURL.path
        return ModelSource(name: name, basePath: base, policy: policy, labels: entry.versionLabels)
    }
}
