import Foundation
import XCTest

/// scripts/fetch-model.sh on a fresh `git clone` with nothing beside it (no `../shared`):
/// it must leave what `make run` and compose.yaml need in models/ as regular files, and a
/// failure must say what failed, the download URL and how to use a local copy. No test
/// touches the network: the weights come from CONVEYOR_WEIGHTS_PATH or a `file://` URL.
/// The clone holds only committed files, so the test checks what a new user gets.
final class FetchModelScriptTests: XCTestCase {
    private let repo = Tool.repo

    private static let weightsName = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
    private static let officialURL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + weightsName
    private static let installedWeights = "models/inception_v3/" + weightsName
    /// The variables the script reads; the Makefile exports CONVEYOR_WEIGHTS_PATH, so each test sets its own.
    private static let scriptVariables = [
        "CONVEYOR_WEIGHTS_PATH", "CONVEYOR_WEIGHTS_URL", "CONVEYOR_WEIGHTS_SHA256",
        "CONVEYOR_LABELS_PATH", "CONVEYOR_SAMPLE_IMAGE_PATH",
    ]

    /// `../shared` beside the repository (env CONVEYOR_SHARED overrides it), as the pipeline tests find it.
    private var shared: URL {
        if let path = ProcessInfo.processInfo.environment["CONVEYOR_SHARED"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        return repo.deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
    }

    /// The fixture weights file (seeded random, not the official file): the local copy the tests use.
    private var fixtureWeights: String {
        shared.appendingPathComponent("models/inception_v3/" + Self.weightsName).path
    }

    /// Runs scripts/fetch-model.sh in `clone` with only `variables` of the script's own set.
    private func fetchModel(in clone: URL, _ variables: [String: String]) throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        for name in Self.scriptVariables { environment.removeValue(forKey: name) }
        environment.merge(variables) { _, new in new }
        return try Tool.run("bash", ["scripts/fetch-model.sh"], in: clone, environment: environment)
    }

    /// A `git clone` of the repository, alone in a new temporary folder; removed afterwards.
    private func withFreshClone(_ body: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let parent = fm.temporaryDirectory.appendingPathComponent("conveyor-clone-\(UUID().uuidString)", isDirectory: true)
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: parent) }
        let clone = parent.appendingPathComponent("conveyor", isDirectory: true)
        let result = try Tool.run("git", ["-c", "safe.directory=*", "clone", "--quiet", repo.path, clone.path], in: parent)
        guard result.status == 0 else {
            XCTFail("git clone \(repo.path) failed (\(result.status)): \(result.output)")
            return
        }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent.path), ["conveyor"], "something beside the clone")
        XCTAssertFalse(fm.fileExists(atPath: clone.appendingPathComponent("models").path), "models/ is committed?")
        try body(clone)
    }

    /// The item at `path` is a regular file (not a symbolic link) with the bytes of `source`.
    private func assertRegularCopy(_ path: URL, of source: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let fm = FileManager.default
        XCTAssertThrowsError(try fm.destinationOfSymbolicLink(atPath: path.path), "\(path.path) is a symbolic link",
                             file: file, line: line)
        let type = try fm.attributesOfItem(atPath: path.path)[.type] as? FileAttributeType
        XCTAssertEqual(type, .typeRegular, "\(path.path) is not a regular file", file: file, line: line)
        XCTAssertEqual(try Data(contentsOf: path), try Data(contentsOf: source), "\(path.path) differs from \(source.path)",
                       file: file, line: line)
    }

    private func assertNamesURLAndLocalCopy(_ output: String, url: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(output.contains(url), "the message does not name the URL \(url): \(output)", file: file, line: line)
        XCTAssertTrue(output.contains("CONVEYOR_WEIGHTS_PATH"), "the message does not say how to use a local copy: \(output)",
                      file: file, line: line)
    }

    func testALocalCopyAndTheCommittedDataEndUpInModelsAsRegularFiles() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixtureWeights), "fixture weights missing: \(fixtureWeights)")
        try withFreshClone { clone in
            let result = try fetchModel(in: clone, ["CONVEYOR_WEIGHTS_PATH": fixtureWeights])
            XCTAssertEqual(result.status, 0, result.output)
            try assertRegularCopy(clone.appendingPathComponent(Self.installedWeights), of: URL(fileURLWithPath: fixtureWeights))
            try assertRegularCopy(clone.appendingPathComponent("models/image_net_labels.json"),
                                  of: clone.appendingPathComponent("data/image_net_labels.json"))
            try assertRegularCopy(clone.appendingPathComponent("models/cat.jpg"), of: clone.appendingPathComponent("data/cat.jpg"))

            // The committed labels keep the ImageNet convention the engine expects: 1001 entries, 0 is "background".
            let labels = try JSONSerialization.jsonObject(with: Data(contentsOf: clone.appendingPathComponent("data/image_net_labels.json")))
            let names = try XCTUnwrap(labels as? [String])
            XCTAssertEqual(names.count, 1001)
            XCTAssertEqual(names.first, "background")
            if names.count == 1001 { XCTAssertEqual(names[285], "Siamese cat") }

            // A second run keeps what is there.
            let again = try fetchModel(in: clone, ["CONVEYOR_WEIGHTS_PATH": fixtureWeights])
            XCTAssertEqual(again.status, 0, again.output)
            try assertRegularCopy(clone.appendingPathComponent(Self.installedWeights), of: URL(fileURLWithPath: fixtureWeights))
        }
    }

    func testAMissingLocalCopyFailsNamingTheURLAndTheVariable() throws {
        try withFreshClone { clone in
            let missing = clone.appendingPathComponent("no-such-weights.h5").path
            let result = try fetchModel(in: clone, ["CONVEYOR_WEIGHTS_PATH": missing])
            XCTAssertNotEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains(missing), result.output)
            assertNamesURLAndLocalCopy(result.output, url: Self.officialURL)
            XCTAssertFalse(FileManager.default.fileExists(atPath: clone.appendingPathComponent(Self.installedWeights).path))
        }
    }

    func testALocalCopyWithTheWrongHashFails() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixtureWeights), "fixture weights missing: \(fixtureWeights)")
        try withFreshClone { clone in
            let result = try fetchModel(in: clone, [
                "CONVEYOR_WEIGHTS_PATH": fixtureWeights,
                "CONVEYOR_WEIGHTS_SHA256": String(repeating: "0", count: 64),
            ])
            XCTAssertNotEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("sha256"), result.output)
            assertNamesURLAndLocalCopy(result.output, url: Self.officialURL)
            XCTAssertFalse(FileManager.default.fileExists(atPath: clone.appendingPathComponent(Self.installedWeights).path))
        }
    }

    /// The download path, without the network: a `file://` URL. The fixture weights are not
    /// the official file, so the pinned sha256 must refuse them and nothing may stay behind.
    func testADownloadWithTheWrongHashFailsAndLeavesNothing() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixtureWeights), "fixture weights missing: \(fixtureWeights)")
        try withFreshClone { clone in
            let url = URL(fileURLWithPath: fixtureWeights).absoluteString
            let result = try fetchModel(in: clone, ["CONVEYOR_WEIGHTS_URL": url])
            XCTAssertNotEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains("sha256"), result.output)
            assertNamesURLAndLocalCopy(result.output, url: url)
            let folder = clone.appendingPathComponent("models/inception_v3").path
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [], "left behind in \(folder)")
        }
    }

    func testAFailedDownloadFailsNamingTheURLAndTheVariable() throws {
        try withFreshClone { clone in
            let url = clone.appendingPathComponent("no-such-weights.h5").absoluteString
            let result = try fetchModel(in: clone, ["CONVEYOR_WEIGHTS_URL": url])
            XCTAssertNotEqual(result.status, 0, result.output)
            assertNamesURLAndLocalCopy(result.output, url: url)
            XCTAssertFalse(FileManager.default.fileExists(atPath: clone.appendingPathComponent(Self.installedWeights).path))
        }
    }
}
