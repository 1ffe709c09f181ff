import Foundation

/// One ``Pipeline`` shared by the tests of a class: started by the first test that asks for
/// it (so a start failure is reported by a test, not lost in a class setUp) and shut down in
/// the class's `tearDown()`. Its files are removed unless a test failed, in which case the
/// directory with the logs is kept and its path printed.
final class SharedPipeline: @unchecked Sendable {
    // @unchecked Sendable: the mutable state is only touched with `lock` held.
    private let lock = NSLock()
    private let make: @Sendable () async throws -> Pipeline
    private var starting: Task<Pipeline, any Error>?
    private var pipeline: Pipeline?
    private var failures = 0

    init(_ make: @escaping @Sendable () async throws -> Pipeline) {
        self.make = make
    }

    /// The running pipeline; the first call starts it, later ones get the same one (or the
    /// same start error).
    func get() async throws -> Pipeline {
        let task = lock.withLock { () -> Task<Pipeline, any Error> in
            if let starting { return starting }
            let task = Task { [make] in try await make() }
            starting = task
            return task
        }
        let pipeline = try await task.value
        lock.withLock { self.pipeline = pipeline }
        return pipeline
    }

    /// Called by each test's tearDown: remembers failures, to keep the logs.
    func record(testSucceeded: Bool) {
        if !testSucceeded { lock.withLock { failures += 1 } }
    }

    /// Stops every process; removes the files unless a test failed.
    func shutDown() {
        let (pipeline, failures) = lock.withLock { (self.pipeline, self.failures) }
        guard let pipeline else { return }
        pipeline.shutDown()
        if failures == 0 {
            pipeline.removeFiles()
        } else {
            print("pipeline logs kept in \(pipeline.directory.path)")
        }
        lock.withLock {
            self.pipeline = nil
            self.starting = nil
        }
    }
}
