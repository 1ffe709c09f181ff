import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small files naming the jobs of the batches a worker process is running,
/// so that a worker started after a crash on the same machine knows which
/// jobs were in the batch that crashed and can run each of them alone: a
/// request that crashes the engine then takes no other job down with it
/// when it is delivered again.
///
/// Each inference thread has one file, `<worker>-<random>-<thread>.batch`,
/// holding the job ids of its current batch (one per line) while the batch
/// runs, and empty between batches. The process holds an exclusive `flock`
/// on each of its files for as long as it lives, so a file whose lock can be
/// taken belongs to a process that is gone, whatever its pid (pids repeat,
/// in containers always). A process that ends normally removes its files;
/// ``orphans(in:)`` reads and deletes the others.
///
/// `@unchecked Sendable`: the descriptors are fixed at init; each thread
/// writes only its own file.
final class BatchJournal: @unchecked Sendable {
    let directory: URL
    private let paths: [String]
    private let descriptors: [Int32]

    /// Creates (and locks) one file per thread in `directory`; `nil` when that
    /// cannot be done.
    init?(directory: String, worker: String, threads: Int) {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        guard (try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)) != nil else { return nil }
        let safe = String(worker.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(64))
        let stem = "\(safe)-\(UUID().uuidString.prefix(8))"
        var paths: [String] = []
        var descriptors: [Int32] = []
        for thread in 0..<max(1, threads) {
            let path = url.appendingPathComponent("\(stem)-\(thread).batch").path
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                if fd >= 0 { close(fd) }
                for (done, path) in zip(descriptors, paths) {
                    close(done)
                    unlink(path)
                }
                return nil
            }
            paths.append(path)
            descriptors.append(fd)
        }
        self.directory = url
        self.paths = paths
        self.descriptors = descriptors
    }

    /// The batch `thread` is about to run.
    func record(_ jobIDs: [String], thread: Int) {
        let fd = descriptors[thread]
        let bytes = Array(jobIDs.joined(separator: "\n").utf8)
        _ = ftruncate(fd, 0)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// `thread`'s batch is over.
    func clear(thread: Int) {
        _ = ftruncate(descriptors[thread], 0)
    }

    /// Removes this process's files (the worker stops normally).
    func remove() {
        for (fd, path) in zip(descriptors, paths) {
            unlink(path)
            close(fd)
        }
    }

    /// The job ids in the files no live process holds, which are deleted:
    /// the batches those processes died in.
    static func orphans(in directory: String) -> Set<String> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var ids: Set<String> = []
        for name in names where name.hasSuffix(".batch") {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }  // its process lives
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                ids.formUnion(text.split(separator: "\n").map(String.init))
            }
            unlink(path)
        }
        return ids
    }
}
