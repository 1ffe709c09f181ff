import Logging
import ServiceContextModule

/// The job a task works on, carried in its `ServiceContext` so that every log
/// line written meanwhile has `job_id`, whichever logger writes it.
public enum JobLogContext {
    private enum Key: ServiceContextKey {
        typealias Value = String
        static var nameOverride: String? { "conveyor.job_id" }
    }

    /// Runs `operation` with `jobID` as the current job.
    public static func withJob<T>(_ jobID: String, _ operation: () async throws -> T) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        context[Key.self] = jobID
        return try await ServiceContext.withValue(context) { try await operation() }
    }

    /// The current job's id, if any.
    public static var current: String? { ServiceContext.current?[Key.self] }

    /// Adds `job_id` to log lines written inside ``withJob(_:_:)``.
    public static let metadataProvider = Logger.MetadataProvider {
        current.map { ["job_id": .string($0)] } ?? [:]
    }
}
