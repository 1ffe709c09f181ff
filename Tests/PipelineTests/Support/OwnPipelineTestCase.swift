import Foundation
import XCTest

/// A test case that starts a pipeline of its own (`pipeline`) and stops it in
/// tearDown, keeping the logs when the test failed.
class OwnPipelineTestCase: XCTestCase {
    var pipeline: Pipeline?

    override func tearDown() async throws {
        if let pipeline {
            pipeline.shutDown()
            if (testRun?.totalFailureCount ?? 1) == 0 {
                pipeline.removeFiles()
            } else {
                print("pipeline logs kept in \(pipeline.directory.path)")
            }
        }
        pipeline = nil
        try await super.tearDown()
    }
}
