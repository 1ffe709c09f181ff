import Logging

/// Polls a model repository and reports each change: a version folder that
/// appears, one that is deleted (which rolls `latest` back to the previous
/// version), a policy or label change in a re-read config file.
///
/// A config file that becomes invalid while running is logged and the last
/// valid one stays in force, as in TF Serving; an invalid file at start is an
/// error.
public struct RepositoryWatcher: Sendable {
    public let configuration: ModelRepositoryConfiguration
    private let logger: Logger

    public init(_ configuration: ModelRepositoryConfiguration,
                logger: Logger = Logger(label: "conveyor.model-repository")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Calls `onChange` with the first snapshot, then with every snapshot that
    /// differs from the previous one, until the task is cancelled.
    public func run(onChange: @Sendable (RepositorySnapshot) async -> Void) async throws {
        var sources = try configuration.loadSources()
        var last = RepositorySnapshot.scan(sources)
        await onChange(last)
        let clock = ContinuousClock()
        var nextConfigRead = clock.now.advanced(by: .seconds(configuration.configPollSeconds))
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(max(configuration.fileSystemPollSeconds, 0.05)))
            if configuration.configPollSeconds > 0, clock.now >= nextConfigRead {
                nextConfigRead = clock.now.advanced(by: .seconds(configuration.configPollSeconds))
                do {
                    let reread = try configuration.loadSources()
                    if reread != sources {
                        logger.info("model config changed", metadata: ["models": "\(reread.map(\.name))"])
                        sources = reread
                    }
                } catch {
                    logger.error("model config not reloaded, keeping the previous one: \(error)")
                }
            }
            let snapshot = RepositorySnapshot.scan(sources)
            if snapshot != last {
                last = snapshot
                await onChange(snapshot)
            }
        }
    }
}
