import ArgumentParser
import Logging
import Observability

/// `--log-level` and `--log-format`, for every long-running command.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env CONVEYOR_LOG_LEVEL; default info).")
    var logLevel: String?

    @Option(help: "Log format: text, or json (one object per line: time, level, service, message, job_id, ...) (env CONVEYOR_LOG_FORMAT; default text).")
    var logFormat: String?

    /// Whether logs are JSON lines.
    func json() throws -> Bool {
        let (text, origin) = logFormat.map { ($0, "--log-format") }
            ?? Environment.string("CONVEYOR_LOG_FORMAT").map { ($0, "CONVEYOR_LOG_FORMAT") } ?? ("text", "")
        switch text.lowercased() {
        case "text": return false
        case "json": return true
        default: throw ValidationError("\(origin) \(text): not text or json")
        }
    }

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

    func validate() throws {
        _ = try level()
        _ = try json()
    }

    /// A logger at the chosen level, in the chosen format.
    func logger(_ label: String) throws -> Logger {
        let traces = TraceExport.loggingMetadataProvider
        var logger = try json()
            ? Logger(label: label) { JSONLogHandler(label: $0, metadataProvider: traces) }
            : Logger(label: label, metadataProvider: traces)
        logger.logLevel = try level()
        return logger
    }
}
