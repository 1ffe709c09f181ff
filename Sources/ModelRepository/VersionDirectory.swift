import Foundation

/// One numeric version folder under a model's base path
/// (`<base_path>/<version>/`) and the model file found in it.
public struct VersionDirectory: Sendable, Equatable {
    public var version: Int64
    public var path: String
    /// The Keras HDF5 file to load, or why there is none.
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

    /// `model.h5` if present, else the only `*.h5` file in the folder.
    static func modelFile(in folder: String) -> Result<String, ModelConfigError> {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        if files.contains("model.h5") { return .success((folder as NSString).appendingPathComponent("model.h5")) }
        let h5 = files.filter { $0.hasSuffix(".h5") || $0.hasSuffix(".hdf5") }
        switch h5.count {
        case 1: return .success((folder as NSString).appendingPathComponent(h5[0]))
        case 0: return .failure(ModelConfigError("no Keras HDF5 file (*.h5) in \(folder)"))
        default: return .failure(ModelConfigError("\(h5.count) HDF5 files in \(folder) (\(h5.joined(separator: ", "))): name the one to serve model.h5"))
        }
    }
}
