import Foundation

/// One numeric version folder under a model's base path
/// (`<base_path>/<version>/`) and the model file found in it.
public struct VersionDirectory: Sendable, Equatable {
    public var version: Int64
    public var path: String
    /// The Keras model file to load, or why there is none.
    public var modelFile: Result<String, ModelConfigError>

    /// The version folders under `basePath`: subfolders whose whole name is a
    /// non-negative integer (others, like `tmp` or `1.partial`, are ignored, so
    /// a version can be prepared under another name and renamed into place).
    /// A missing base path has no versions.
    public static func scan(_ basePath: String) -> [VersionDirectory] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: basePath) else { return [] }
        var found: [VersionDirectory] = []
        for name in names {
            guard let version = Int64(name), version >= 0, String(version) == name else { continue }
            let path = (basePath as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            found.append(VersionDirectory(version: version, path: path, modelFile: modelFile(in: path)))
        }
        return found.sorted { $0.version > $1.version }
    }

    /// `model.keras` or `model.h5` if present (not both), else the only Keras
    /// model file (`*.keras`, `*.h5` or `*.hdf5`) in the folder.
    static func modelFile(in folder: String) -> Result<String, ModelConfigError> {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let named = files.filter { $0 == "model.keras" || $0 == "model.h5" }
        if named.count == 2 {
            return .failure(ModelConfigError("both model.h5 and model.keras in \(folder): keep the one to serve"))
        }
        if let name = named.first { return .success(path(name)) }
        let models = files.filter { $0.hasSuffix(".keras") || $0.hasSuffix(".h5") || $0.hasSuffix(".hdf5") }
        switch models.count {
        case 1: return .success(path(models[0]))
        case 0: return .failure(ModelConfigError("no Keras model file (*.keras or *.h5) in \(folder)"))
        default: return .failure(ModelConfigError("\(models.count) Keras model files in \(folder) (\(models.joined(separator: ", "))): name the one to serve model.keras or model.h5"))
        }
    }
}
