/// Where the models come from, as TF Serving's flags say it: either one
/// model (`--model_name`, `--model_base_path`) or a config file
/// (`--model_config_file`), polled for new versions every
/// `fileSystemPollSeconds` and re-read every `configPollSeconds` (0: never).
public struct ModelRepositoryConfiguration: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case single(ModelSource)
        case configFile(String)
    }

    public var source: Source
    /// `--file_system_poll_wait_seconds` (TF Serving's default is 1).
    public var fileSystemPollSeconds: Double
    /// `--model_config_file_poll_wait_seconds` (0: read once).
    public var configPollSeconds: Double

    public init(source: Source, fileSystemPollSeconds: Double = 1, configPollSeconds: Double = 0) {
        self.source = source
        self.fileSystemPollSeconds = fileSystemPollSeconds
        self.configPollSeconds = configPollSeconds
    }

    /// The configured models, reading the config file if there is one.
    public func loadSources() throws -> [ModelSource] {
        switch source {
        case .single(let model): return [model]
        case .configFile(let path): return try ModelConfigFile.load(path)
        }
    }
}
