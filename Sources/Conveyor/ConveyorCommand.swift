import ArgumentParser
import Foundation

@main
struct ConveyorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "Conveyor: asynchronous InceptionV3 inference over MQTT.",
        subcommands: [UpCommand.self, IngressCommand.self, WorkerCommand.self, StoreCommand.self, DeviceCommand.self, PredictCommand.self, Classify.self, Bench.self]
    )

    static func main() async {
        // Pick the OpenBLAS kernel before anything runs (may re-exec).
        BLASKernel.ensure(override: kernelArgument(CommandLine.arguments))
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// `--blas-kernel NAME` anywhere on the command line.
    static func kernelArgument(_ args: [String]) -> String? {
        for (i, arg) in args.enumerated() {
            if arg == "--blas-kernel", i + 1 < args.count { return args[i + 1] }
            if arg.hasPrefix("--blas-kernel=") { return String(arg.dropFirst("--blas-kernel=".count)) }
        }
        return nil
    }
}

/// Options every engine command takes.
struct EngineOptions: ParsableArguments {
    @Option(help: "Path to a Keras model (.h5 or .keras), or the InceptionV3 weights file (env CONVEYOR_MODEL).")
    var model: String?

    @Option(help: "Threads for inference (default: all cores, env CONVEYOR_THREADS).")
    var threads: Int?

    @Option(help: "OpenBLAS kernel: auto (from the CPU flags) or a name such as SkylakeX or Haswell (env CONVEYOR_BLAS_KERNEL; default: OPENBLAS_CORETYPE if set, else auto).")
    var blasKernel: String?

    var modelPath: String {
        get throws {
            if let model { return model }
            if let env = ProcessInfo.processInfo.environment["CONVEYOR_MODEL"], !env.isEmpty { return env }
            throw ValidationError("no model: pass --model PATH or set CONVEYOR_MODEL")
        }
    }

    var threadCount: Int {
        if let threads { return threads }
        if let env = ProcessInfo.processInfo.environment["CONVEYOR_THREADS"], let n = Int(env), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }
}
