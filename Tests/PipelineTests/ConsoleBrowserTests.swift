import Foundation
import XCTest

/// The web console in a real browser: headless Chromium (Debian's `chromium` and
/// `chromium-driver`) driven by Selenium (`Tests/Browser/console_check.py`, in the venv of
/// `scripts/browser-venv.sh`) against real processes: it submits `cat.jpg` through the file
/// input and must show the top-1 label that `conveyor classify` prints, deletes the job from
/// the table, and cancels a queued job. Screenshots of the page, desktop and phone sized,
/// are saved in the tests' output folder (``Paths/testOutput``).
final class ConsoleBrowserTests: OwnPipelineTestCase {
    private static let script = Paths.repo.appendingPathComponent("Tests/Browser/console_check.py").path

    /// The browser venv's python.
    private func python() throws -> String {
        let venv = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/browser-venv.sh").path, [], timeout: 600)
        guard venv.status == 0, let python = venv.output.split(separator: "\n").last.map(String.init) else {
            throw PipelineError("scripts/browser-venv.sh failed:\n\(venv.output)")
        }
        return python
    }

    /// What the script printed last (a JSON object).
    private func lastJSON(_ output: String) -> [String: Any] {
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }

    /// The top-1 label `conveyor classify` prints for `image`.
    private func classifyTop1(_ image: String, pipeline: Pipeline) throws -> String {
        let (status, output) = try ProgramRun.run(Paths.binary, ["classify", image, "--model", pipeline.model,
                                                                 "--labels", pipeline.labels, "--top", "1", "--json"],
                                                  timeout: 300)
        XCTAssertEqual(status, 0, output)
        let start = try XCTUnwrap(output.firstIndex(of: "["), output)
        let parsed = try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]]
        let label = (parsed?.first?["top"] as? [[String: Any]])?.first?["label"] as? String
        return try XCTUnwrap(label, output)
    }

    func testSubmitWatchDeleteAndCancelInChromium() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] where ProcessInfo.processInfo.environment["CONVEYOR_CHROMIUM"] == nil {
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                throw PipelineError("\(tool) is missing: apt-get install chromium chromium-driver (scripts/install-deps.sh does)")
            }
        }
        let python = try python()
        let pipeline = try Pipeline(name: "console-browser")
        self.pipeline = pipeline
        let keys = pipeline.directory.appendingPathComponent("keys.txt")
        try "console-test-key\n".write(to: keys, atomically: true, encoding: .utf8)
        try await pipeline.start(workers: ["worker-browser"],
                                 ingresses: [.init(name: "ingress", extraArguments: ["--api-keys-file", keys.path])])
        let url = "http://127.0.0.1:\(try pipeline.ingress.port)"
        let image = Paths.sampleImage
        let expected = try classifyTop1(image, pipeline: pipeline)
        try FileManager.default.createDirectory(at: Paths.testOutput, withIntermediateDirectories: true)

        // Submit, watch it succeed with the label `conveyor classify` prints, delete it: on a
        // desktop-sized window and on a phone-sized one.
        for (name, size) in [("console.png", "1280,1000"), ("console-phone.png", "390,844")] {
            let screenshot = Paths.testOutput.appendingPathComponent(name).path
            let classify = try ProgramRun.run(python, [Self.script, "classify", "--url", url, "--image", image,
                                                       "--expect-label", expected, "--screenshot", screenshot,
                                                       "--window-size", size, "--api-key", "console-test-key",
                                                       "--timeout", "120"], timeout: 400)
            XCTAssertEqual(classify.status, 0, "\(size): \(classify.output)\n\(pipeline.diagnostics())")
            let seen = lastJSON(classify.output)
            XCTAssertEqual(seen["top1"] as? String, expected, classify.output)
            let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
            XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG screenshot")
            XCTAssertGreaterThan(png.count, 10_000)
            print("console screenshot: \(screenshot)")
            // The page deleted it through the API: the store no longer knows it.
            let id = try XCTUnwrap(seen["job_id"] as? String, "the script did not report the job id: \(classify.output)")
            let reply = try await pipeline.http.get("/job/\(id)", headers: ["Authorization": "Bearer console-test-key"])
            XCTAssertEqual(reply.status, 404, reply.text)
        }

        // With the worker paused the next job stays queued; cancelled from the table, it shows `cancelled`.
        let worker = try XCTUnwrap(pipeline.workers["worker-browser"]?.pid)
        XCTAssertEqual(kill(worker, SIGSTOP), 0)
        defer { kill(worker, SIGCONT) }
        let cancel = try ProgramRun.run(python, [Self.script, "cancel", "--url", url, "--image", image,
                                                 "--screenshot", Paths.testOutput.appendingPathComponent("console-cancel.png").path,
                                                 "--api-key", "console-test-key",
                                                 "--timeout", "60"], timeout: 300)
        XCTAssertEqual(cancel.status, 0, "\(cancel.output)\n\(pipeline.diagnostics())")
        let cancelled = try XCTUnwrap(lastJSON(cancel.output)["job_id"] as? String, cancel.output)
        let record = try await pipeline.http.get("/job/\(cancelled)", headers: ["Authorization": "Bearer console-test-key"])
        XCTAssertEqual(try JobView(id: cancelled, reply: record).status, "cancelled")
    }
}
