import Foundation
import ModelRepository
import XCTest

final class RepositoryScanTests: XCTestCase {
    private var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("repo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    private func makeVersion(_ model: String, _ name: String, files: [String] = ["weights.h5"]) throws {
        let dir = root.appendingPathComponent(model).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for file in files { try Data("x".utf8).write(to: dir.appendingPathComponent(file)) }
    }

    func testScanFindsNumericVersionFoldersAndTheirModelFile() throws {
        try makeVersion("m", "1")
        try makeVersion("m", "2", files: ["a.h5", "model.h5", "labels.txt"])
        try makeVersion("m", "3", files: ["a.h5", "b.h5"])
        try makeVersion("m", "4", files: ["labels.txt"])
        try makeVersion("m", "tmp")
        try makeVersion("m", "05")
        try makeVersion("m", "-1")
        try Data().write(to: root.appendingPathComponent("m/7"))  // a file, not a folder
        let found = VersionDirectory.scan(root.appendingPathComponent("m").path)
        XCTAssertEqual(found.map(\.version), [4, 3, 2, 1])
        XCTAssertEqual(try found[3].modelFile.get(), root.appendingPathComponent("m/1/weights.h5").path)
        XCTAssertEqual(try found[2].modelFile.get(), root.appendingPathComponent("m/2/model.h5").path)
        XCTAssertThrowsError(try found[1].modelFile.get()) { XCTAssertTrue("\($0)".contains("2 Keras model files")) }
        XCTAssertThrowsError(try found[0].modelFile.get()) { XCTAssertTrue("\($0)".contains("no Keras model file")) }
        XCTAssertEqual(VersionDirectory.scan(root.appendingPathComponent("missing").path), [])
    }

    func testKerasArchivesAreModelFilesToo() throws {
        try makeVersion("k", "1", files: ["quickstart.keras"])
        try makeVersion("k", "2", files: ["model.keras", "older.h5"])
        try makeVersion("k", "3", files: ["model.keras", "model.h5"])
        try makeVersion("k", "4", files: ["a.keras", "b.h5"])
        let found = VersionDirectory.scan(root.appendingPathComponent("k").path)
        XCTAssertEqual(found.map(\.version), [4, 3, 2, 1])
        XCTAssertEqual(try found[3].modelFile.get(), root.appendingPathComponent("k/1/quickstart.keras").path)
        XCTAssertEqual(try found[2].modelFile.get(), root.appendingPathComponent("k/2/model.keras").path)
        XCTAssertThrowsError(try found[1].modelFile.get()) { XCTAssertTrue("\($0)".contains("both model.h5 and model.keras"), "\($0)") }
        XCTAssertThrowsError(try found[0].modelFile.get()) { XCTAssertTrue("\($0)".contains("2 Keras model files"), "\($0)") }
    }

    func testSnapshotAppliesEachModelsPolicy() throws {
        for v in ["1", "2", "3"] { try makeVersion("a", v); try makeVersion("b", v) }
        let snapshot = RepositorySnapshot.scan([
            ModelSource(name: "a", basePath: root.appendingPathComponent("a").path, policy: .latest(2)),
            ModelSource(name: "b", basePath: root.appendingPathComponent("b").path, policy: .specific([1, 9])),
        ])
        XCTAssertEqual(snapshot.model(named: "a")?.servables.map(\.version), [3, 2])
        XCTAssertEqual(snapshot.model(named: "b")?.servables.map(\.version), [1])
        XCTAssertEqual(snapshot.servables.count, 3)
    }

    func testWatcherServesANewVersionAndRollsBackWhenItIsDeleted() async throws {
        try makeVersion("m", "1")
        let source = ModelSource(name: "m", basePath: root.appendingPathComponent("m").path)
        let watcher = RepositoryWatcher(.init(source: .single(source), fileSystemPollSeconds: 0.05))
        let (stream, continuation) = AsyncStream.makeStream(of: [Int64].self)
        let task = Task { try await watcher.run { continuation.yield($0.servables.map(\.version)) } }
        defer { task.cancel() }
        var versions = stream.makeAsyncIterator()
        let first = await versions.next()
        XCTAssertEqual(first, [1])
        try makeVersion("m", "2")
        let second = await versions.next()
        XCTAssertEqual(second, [2], "the new version replaces the old under latest(1)")
        try FileManager.default.removeItem(at: root.appendingPathComponent("m/2"))
        let third = await versions.next()
        XCTAssertEqual(third, [1], "deleting the newest rolls back")
    }

    func testWatcherRereadsTheConfigAndKeepsTheLastValidOne() async throws {
        try makeVersion("m", "1")
        try makeVersion("m", "2")
        let file = root.appendingPathComponent("models.config")
        func write(_ policy: String) throws {
            try Data("model_config_list { config { name: 'm' base_path: 'm' \(policy) } }".utf8).write(to: file)
        }
        try write("")
        let watcher = RepositoryWatcher(.init(source: .configFile(file.path), fileSystemPollSeconds: 0.05,
                                              configPollSeconds: 0.05))
        let (stream, continuation) = AsyncStream.makeStream(of: [Int64].self)
        let task = Task { try await watcher.run { continuation.yield($0.servables.map(\.version)) } }
        defer { task.cancel() }
        var versions = stream.makeAsyncIterator()
        let first = await versions.next()
        XCTAssertEqual(first, [2])
        try Data("model_config_list { this is not valid".utf8).write(to: file)
        try await Task.sleep(for: .milliseconds(300))
        try write("model_version_policy { all {} }")
        let second = await versions.next()
        XCTAssertEqual(second, [2, 1], "the broken file was skipped and the next valid one applied")
    }
}
