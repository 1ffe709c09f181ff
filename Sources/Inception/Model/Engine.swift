import Foundation

/// Process-wide engine settings.
public enum Engine {
    /// Sets the threads the engine uses. Call once at start-up, before
    /// running models. The engine splits every layer across its own threads
    /// and calls OpenBLAS single-threaded from each: OpenBLAS's own worker
    /// threads busy-wait between calls and would compete with the engine's
    /// loops (im2col, pooling) for the same cores.
    public static func configure(threads: Int) {
        BLAS.threads = 1
        Parallel.threads = max(1, threads)
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
