import Foundation

/// What a fuzz target's executable does when it is built without libFuzzer (the normal
/// `swift build`): runs the target's function once on every file named on the command line
/// (directories: every file in them), so a crash input or a corpus can be replayed in a
/// debugger or under the normal build. Prints how many inputs ran.
public enum FuzzReplay {
    public static func main(_ name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        let arguments = CommandLine.arguments.dropFirst()
        guard !arguments.isEmpty else {
            print("usage: \(name) FILE|DIR…   (replays inputs; scripts/fuzz.sh builds the libFuzzer binary)")
            exit(2)
        }
        var files: [String] = []
        for path in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("\(name): no such file \(path)")
                exit(2)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            data.withUnsafeBytes { body($0) }
        }
        print("\(name): replayed \(files.count) input(s)")
    }
}
