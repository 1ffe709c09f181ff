import Foundation

/// Small files naming the jobs of the batches a worker process is running,
/// so that a worker started after a crash on the same machine knows which
/// jobs were in the batch that crashed and can run each of them alone: a
/// request that crashes the engine then takes no other job down with it
/// when it is delivered again.
///
/// Each inference thread has one file, `<pid>-<worker>-<thread>.batch`,
/// holding the job ids of its current batch (one per line) while the batch
/// runs, and empty between batches. A process that ends normally removes its
/// files; the files of a process that is gone (no such pid) are what
/// ``orphans(in:)`` reads and deletes.
///
/// `Sendable`: immutable; each thread writes only its own file.
final class BatchJournal: Sendable {
    let directory: URL
    private let stem: String

    /// Uses (and creates) `directory`; `nil` when it cannot be created.
    init?(directory: String, worker: String) {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            return nil
        }
        self.directory = url
        let safe = String(worker.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(64))
        stem = "\(getpid())-\(safe)"
    }

    private func file(_ thread: Int) -> URL { directory.appendingPathComponent("\(stem)-\(thread).batch") }

    /// The batch `thread` is about to run.
    func record(_ jobIDs: [String], thread: Int) {
        try? Data(jobIDs.joined(separator: "\n").utf8).write(to: file(thread))
    }

    /// `thread`'s batch is over.
    func clear(thread: Int) {
        try? Data().write(to: file(thread))
    }

    /// Removes this process's files (the worker stops normally).
    func remove(threads: Int) {
        for thread in 0..<threads { try? FileManager.default.removeItem(at: file(thread)) }
    }

    /// The job ids in the files of processes that no longer run, which are
    /// deleted: the batches those processes died in.
    static func orphans(in directory: String) -> Set<String> {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return [] }
        var ids: Set<String> = []
        for name in names where name.hasSuffix(".batch") {
            guard let pid = name.split(separator: "-").first.flatMap({ pid_t($0) }), !isRunning(pid) else { continue }
            let path = url.appendingPathComponent(name)
            if let text = try? String(contentsOf: path, encoding: .utf8) {
                ids.formUnion(text.split(separator: "\n").map(String.init))
            }
            try? FileManager.default.removeItem(at: path)
        }
        return ids
    }

    private static func isRunning(_ pid: pid_t) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }
}
