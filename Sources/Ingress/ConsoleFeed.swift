import Foundation
import Jobs
import Hummingbird
import Synchronization
import TFServing

/// The live feed behind `GET /events` (Server-Sent Events), built once for
/// every connected client from what the ingress already receives: results
/// and running events from the broker, the jobs it accepted itself, the
/// ledger stats, the workers' heartbeats and announcements. No client causes
/// a store query.
///
/// Every ``flushInterval`` the job changes since the last flush go out as one
/// `jobs` event (the latest state of each job, at most ``maxJobsPerEvent``;
/// the rest are counted in `dropped`), and every second a `summary` event.
/// Each message is encoded once and handed to every client; a client that
/// cannot keep up loses whole messages (its buffer keeps the newest few), so
/// a slow page never holds memory or time of the others.
public final class ConsoleFeed: Sendable {
    /// One client's stream of encoded SSE messages.
    public typealias Stream = AsyncStream<ByteBuffer>

    /// How often job changes go out.
    public static let flushInterval: Duration = .milliseconds(500)
    /// The most job changes one `jobs` event carries.
    public static let maxJobsPerEvent = 200
    /// Jobs/s is counted over this window (seconds).
    static let rateWindow: Int64 = 10
    /// p50/p99 latency is taken over this window (seconds).
    static let latencyWindow: Int64 = 60
    /// A worker not heard from for this long (milliseconds) leaves the summary.
    static let workerTimeout: Int64 = 15_000

    private struct Finished {
        var at: Int64
        var latency: Double?
    }

    private struct State {
        /// Changed jobs since the last flush, in order of first change.
        var changed: [String] = []
        var latest: [String: JobResult] = [:]
        /// Terminal results seen, oldest first, within ``latencyWindow``.
        var finished: [Finished] = []
        var ledger: LedgerStats?
        var heartbeats: [String: (beat: WorkerHeartbeat, seen: Int64)] = [:]
        var clients: [UInt64: Stream.Continuation] = [:]
        var nextClient: UInt64 = 0
        var lastSummary: ByteBuffer?
        var finishedAll = false
        /// Jobs seen ending, newest last (bounded): a late running event of
        /// one (a worker started it as it was cancelled) is not a change.
        var ended: Set<String> = []
        var endedOrder: [String] = []
    }

    /// How many ended jobs are remembered for that.
    static let endedMemory = 10_000

    private let state = Mutex(State())
    private let catalog: ModelCatalog
    /// Most clients at once.
    public let maxClients: Int

    public init(catalog: ModelCatalog, maxClients: Int = 2_000) {
        self.catalog = catalog
        self.maxClients = maxClients
    }

    // MARK: - Inputs

    /// A job changed state: a result or running event from the broker, or a
    /// job this ingress accepted (`queued`).
    public func jobChanged(_ result: JobResult) {
        let now = Clock.nowMillis()
        state.withLock { s in
            if result.status.isTerminal {
                // The first ending wins, as in the store: a second result (a redelivered job
                // finishing twice, a result after a cancellation) is not a change.
                guard s.ended.insert(result.jobID).inserted else { return }
                s.endedOrder.append(result.jobID)
                if s.endedOrder.count > Self.endedMemory * 2 {
                    s.ended.subtract(s.endedOrder.prefix(Self.endedMemory))
                    s.endedOrder.removeFirst(Self.endedMemory)
                }
                if result.status != .cancelled {
                    let latency = result.timings.finishedAt.flatMap { end in
                        result.timings.queuedAt.map { Double(max(0, end - $0)) }
                    }
                    s.finished.append(Finished(at: now, latency: latency))
                }
            } else if s.ended.contains(result.jobID) {
                // A late running event of a job that already ended.
                return
            } else if result.status == .queued, let current = s.latest[result.jobID], current.status != .queued {
                // The ledger's receipt came after a worker's running event.
                return
            }
            if s.latest.updateValue(result, forKey: result.jobID) == nil { s.changed.append(result.jobID) }
        }
    }

    /// The store's latest ledger counts.
    public func ledgerStats(_ stats: LedgerStats) {
        state.withLock { $0.ledger = stats }
    }

    /// A worker's heartbeat (what it holds).
    public func heartbeat(_ beat: WorkerHeartbeat) {
        let now = Clock.nowMillis()
        state.withLock { $0.heartbeats[beat.worker] = (beat, now) }
    }

    // MARK: - Clients

    /// A new client's stream, which starts with the latest summary; `nil`
    /// when ``maxClients`` are connected already.
    public func subscribe() -> (id: UInt64, stream: Stream)? {
        let (stream, continuation) = Stream.makeStream(bufferingPolicy: .bufferingNewest(8))
        var full = false
        let id: UInt64? = state.withLock { s in
            guard !s.finishedAll else { return nil }
            guard s.clients.count < maxClients else {
                full = true
                return nil
            }
            let id = s.nextClient
            s.nextClient += 1
            s.clients[id] = continuation
            // Reconnect after 2 s if the connection drops (the browser's default is 3 s).
            continuation.yield(ByteBuffer(string: "retry: 2000\n\n"))
            if let summary = s.lastSummary { continuation.yield(summary) }
            return id
        }
        guard let id else {
            continuation.finish()
            return full ? nil : (UInt64.max, stream)
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return (id, stream)
    }

    /// Forgets a client whose connection ended.
    public func unsubscribe(_ id: UInt64) {
        let continuation = state.withLock { $0.clients.removeValue(forKey: id) }
        continuation?.finish()
    }

    /// How many clients are connected.
    public var clientCount: Int { state.withLock { $0.clients.count } }

    /// Ends every client's stream and takes no new ones (graceful shutdown).
    public func finishAll() {
        let all = state.withLock { s in
            s.finishedAll = true
            defer { s.clients = [:] }
            return Array(s.clients.values)
        }
        for continuation in all { continuation.finish() }
    }

    // MARK: - Sending

    /// Flushes job changes every ``flushInterval`` and sends a summary every
    /// second, until cancelled.
    public func run() async {
        var ticks = 0
        let perSecond = Int(Duration.seconds(1) / Self.flushInterval)
        while !Task.isCancelled {
            do { try await Task.sleep(for: Self.flushInterval) } catch { return }
            ticks += 1
            flush(summary: ticks % perSecond == 0)
        }
    }

    /// Sends the pending job changes, and a summary if `summary`.
    func flush(summary: Bool) {
        let now = Clock.nowMillis()
        let models = summary ? modelsOnline() : []
        let workersAnnounced = summary ? catalog.workers : []
        let (message, clients): (ByteBuffer?, [Stream.Continuation]) = state.withLock { s in
            var messages: ByteBuffer?
            if !s.changed.isEmpty {
                // The newest changes go; the oldest beyond the limit are only counted.
                let sent = s.changed.suffix(Self.maxJobsPerEvent)
                let jobs = sent.compactMap { s.latest[$0] }
                messages = Self.event("jobs", JobsEvent(jobs: jobs, dropped: s.changed.count - sent.count))
                s.changed = []
                s.latest = [:]
            }
            if summary {
                let cutoff = now - Self.latencyWindow * 1000
                if let keep = s.finished.firstIndex(where: { $0.at >= cutoff }) {
                    s.finished.removeFirst(keep)
                } else {
                    s.finished = []
                }
                s.heartbeats = s.heartbeats.filter { now - $0.value.seen < Self.workerTimeout }
                let message = Self.event("summary", makeSummary(s, now: now, models: models, announced: workersAnnounced))
                s.lastSummary = message
                // One write per client per flush: the summary rides with the job changes.
                if messages == nil {
                    messages = message
                } else {
                    messages!.writeImmutableBuffer(message)
                }
            }
            return (messages, Array(s.clients.values))
        }
        guard let message else { return }
        for continuation in clients { continuation.yield(message) }
    }

    private func makeSummary(_ s: State, now: Int64, models: [Summary.Model],
                             announced: [ServableAnnouncement]) -> Summary {
        let rateCutoff = now - Self.rateWindow * 1000
        let recent = s.finished.reversed().prefix { $0.at >= rateCutoff }.count
        let latencies = s.finished.compactMap(\.latency).sorted()
        var workers: [Summary.Worker] = []
        var seen: Set<String> = []
        for announcement in announced {
            seen.insert(announcement.worker)
            let beat = s.heartbeats[announcement.worker]?.beat
            workers.append(Summary.Worker(worker: announcement.worker,
                                          model: beat?.model ?? announcement.models.first?.name ?? "",
                                          queued: beat?.queued.count ?? 0, running: beat?.running.count ?? 0))
        }
        // A worker heard from but not announcing (an older worker, or its announcement not seen yet).
        for (id, entry) in s.heartbeats.sorted(by: { $0.key < $1.key }) where !seen.contains(id) {
            workers.append(Summary.Worker(worker: id, model: entry.beat.model,
                                          queued: entry.beat.queued.count, running: entry.beat.running.count))
        }
        return Summary(at: now, windowSeconds: Int(Self.latencyWindow),
                       jobsPerSecond: (Double(recent) / Double(Self.rateWindow) * 100).rounded() / 100,
                       queued: s.ledger?.queued, running: s.ledger?.running,
                       latencyMs: Summary.Latency(p50: Self.percentile(latencies, 0.50),
                                                  p99: Self.percentile(latencies, 0.99)),
                       workers: workers, models: models)
    }

    /// Every announced model with its versions' merged states.
    private func modelsOnline() -> [Summary.Model] {
        catalog.modelNames.compactMap { name in
            guard let (versions, _) = catalog.merged(name) else { return nil }
            return Summary.Model(name: name, versions: versions.map { Summary.Version(version: $0.version, state: $0.state.rawValue) })
        }
    }

    /// The nearest-rank percentile of sorted values, rounded to 0.1 ms.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return (sorted[rank] * 10).rounded() / 10
    }

    /// One SSE message: `event: <name>`, the JSON on one `data:` line, a blank line.
    static func event(_ name: String, _ value: some Encodable) -> ByteBuffer {
        let json = (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + name.utf8.count + 16)
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    // MARK: - Messages

    /// `event: jobs`.
    struct JobsEvent: Encodable {
        var jobs: [JobResult]
        var dropped: Int
    }

    /// `event: summary`.
    struct Summary: Encodable {
        struct Latency: Encodable {
            var p50: Double?
            var p99: Double?
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(p50, forKey: .p50)  // null while no job ended in the window
                try c.encode(p99, forKey: .p99)
            }
            enum CodingKeys: String, CodingKey { case p50, p99 }
        }
        struct Worker: Encodable {
            var worker: String
            var model: String
            var queued: Int
            var running: Int
        }
        struct Version: Encodable {
            var version: Int64
            var state: String
        }
        struct Model: Encodable {
            var name: String
            var versions: [Version]
        }

        var at: Int64
        var windowSeconds: Int
        var jobsPerSecond: Double
        var queued: Int?
        var running: Int?
        var latencyMs: Latency
        var workers: [Worker]
        var models: [Model]

        enum CodingKeys: String, CodingKey {
            case at, windowSeconds = "window_seconds", jobsPerSecond = "jobs_per_second", queued, running,
                 latencyMs = "latency_ms", workers, models
        }
    }
}
