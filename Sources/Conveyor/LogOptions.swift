import ArgumentParser
import Logging

/// `--log-level`, for every long-running command.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env CONVEYOR_LOG_LEVEL; default info).")
    var logLevel: String?

    /// The level asked for; an unknown one is an error naming where it came from.
    func level() throws -> Logger.Level {
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                throw ValidationError("--log-level \(logLevel): not one of \(Self.names)")
            }
            return level
        }
        guard let text = Environment.string("CONVEYOR_LOG_LEVEL") else { return .info }
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError("CONVEYOR_LOG_LEVEL=\(text): not one of \(Self.names)")
        }
        return level
    }

    static let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")

    func validate() throws { _ = try level() }

    /// A logger at the chosen level.
    func logger(_ label: String) throws -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = try level()
        return logger
    }
}
