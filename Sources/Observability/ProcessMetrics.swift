import Foundation
import Prometheus

/// The standard Prometheus process metrics, read from `/proc/self` when
/// `/metrics` is scraped: `process_resident_memory_bytes`,
/// `process_cpu_seconds_total` (user + system), `process_start_time_seconds`.
/// On a system without `/proc` they stay absent.
final class ProcessMetrics: Sendable {
    static let shared = ProcessMetrics(registry: MetricsRegistry.registry)

    private let resident: Gauge
    private let cpu: Gauge
    private let start: Gauge

    init(registry: PrometheusCollectorRegistry) {
        resident = registry.makeGauge(name: "process_resident_memory_bytes", help: "Resident memory size in bytes.")
        // A gauge written with the kernel's running total: Prometheus treats the `_total` name as a counter.
        cpu = registry.makeGauge(name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.")
        start = registry.makeGauge(name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.")
        start.set(Date().timeIntervalSince1970 - ProcessInfo.processInfo.systemUptime + Self.startAfterBoot())
    }

    /// Reads the current values.
    func update() {
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
           let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            resident.set(pages * pageSize)
        }
        if let fields = Self.statFields() {
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            // Fields 14 and 15 (utime, stime), counted from 1 in proc(5).
            if fields.count > 14, let user = Double(fields[13]), let system = Double(fields[14]) {
                cpu.set((user + system) / ticks)
            }
        }
    }

    /// The fields of /proc/self/stat after the command name (which may hold spaces),
    /// numbered as in proc(5) minus one.
    private static func statFields() -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return ["pid", "comm"] + stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Seconds after boot at which this process started (field 22, in clock ticks).
    private static func startAfterBoot() -> Double {
        guard let fields = statFields(), fields.count > 21, let ticks = Double(fields[21]) else {
            return ProcessInfo.processInfo.systemUptime
        }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
