import Foundation

/// Process-wide engine settings.
public enum Engine {
    /// Sets the threads used by OpenBLAS and by the engine's own loops.
    /// Call once at start-up, before running models.
    public static func configure(threads: Int) {
        let n = max(1, threads)
        BLAS.threads = n
        Parallel.threads = n
    }

    /// The threads the engine uses.
    public static var threads: Int { Parallel.threads }

    /// Cores available to this process.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Peak resident memory of this process so far, in bytes (Linux), if known.
    public static var peakResidentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
