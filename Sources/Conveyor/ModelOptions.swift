import ArgumentParser
import ModelRepository

/// What a worker serves: one model file, or a TF Serving model repository.
struct ModelOptions: ParsableArguments {
    @Option(help: "Keras model (.h5 or .keras) or the InceptionV3 weights file, served as version 0 (env CONVEYOR_MODEL).")
    var model: String?

    @Option(help: "Name requests use for the model (env CONVEYOR_MODEL_NAME; default: the model's own name).")
    var modelName: String?

    @Option(help: "Labels file (env CONVEYOR_LABELS; default: found beside the model).")
    var labels: String?

    @Option(help: "A TF Serving model config file (model_config_list) (env CONVEYOR_MODEL_CONFIG_FILE).")
    var modelConfigFile: String?

    @Option(help: "Folder of numeric version subfolders of one model, served under --model-name (env CONVEYOR_MODEL_BASE_PATH).")
    var modelBasePath: String?

    @Option(help: "Seconds between scans of the model folders for new or deleted versions (env CONVEYOR_POLL_SECONDS; default 1).")
    var fileSystemPollSeconds: Double?

    @Option(help: "Seconds between re-reads of the model config file (env CONVEYOR_CONFIG_POLL_SECONDS; default 0: never).")
    var configPollSeconds: Double?

    var name: String? { Setting.string(modelName, env: "CONVEYOR_MODEL_NAME") }

    var modelPath: String {
        get throws {
            guard let path = Setting.string(model, env: "CONVEYOR_MODEL") else {
                throw ValidationError("no model: pass --model PATH (or --model-config-file / --model-base-path) or set CONVEYOR_MODEL")
            }
            return path
        }
    }

    /// Every value checked before the command runs (the files are read later).
    func validate() throws { _ = try repository() }

    /// The model repository, if one is configured (it replaces `--model`).
    func repository() throws -> ModelRepositoryConfiguration? {
        let poll = try Setting.double(fileSystemPollSeconds, "file-system-poll-seconds", env: "CONVEYOR_POLL_SECONDS") ?? 1
        let configPoll = try Setting.double(configPollSeconds, "config-poll-seconds", env: "CONVEYOR_CONFIG_POLL_SECONDS") ?? 0
        if let file = Setting.string(modelConfigFile, env: "CONVEYOR_MODEL_CONFIG_FILE") {
            return ModelRepositoryConfiguration(source: .configFile(file), fileSystemPollSeconds: poll, configPollSeconds: configPoll)
        }
        if let base = Setting.string(modelBasePath, env: "CONVEYOR_MODEL_BASE_PATH") {
            guard let name else { throw ValidationError("--model-base-path needs --model-name") }
            guard ModelName.isValid(name) else { throw ValidationError("model name '\(name)' is not 1–64 characters of [A-Za-z0-9_.-]") }
            return ModelRepositoryConfiguration(source: .single(ModelSource(name: name, basePath: base)),
                                                fileSystemPollSeconds: poll)
        }
        return nil
    }
}
