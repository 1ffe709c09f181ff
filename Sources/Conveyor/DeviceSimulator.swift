import Foundation
import Jobs
import MQTT

/// Plays production-line cameras: publishes JPEGs to a model's device request topic at a
/// fixed rate (open loop: the schedule does not wait for answers), each with a reply topic
/// in the device's namespace, and times every answer.
///
/// Each camera is one MQTT connection (`<name>-cam<i>-<pid>`) sharing the device account
/// and namespace `conveyor/v1/devices/<name>/`; camera `i` asks for its answers on
/// `…/replies/<run>-c<i>` and names its jobs `<run>-c<i>-<n>` (so the job ids in the
/// store are `<name>_<run>-c<i>-<n>`). MQTT v5 cameras send the binary form (JPEG payload,
/// Response Topic, Correlation Data = the job key, user property `job_id`); MQTT 3.1.1
/// cameras send the JSON form with `reply_topic`.
final class DeviceSimulator: @unchecked Sendable {
    // @unchecked Sendable: the tallies are only touched with `lock` held; the rest is immutable.
    struct Settings: Sendable {
        var broker: MQTTConfiguration
        /// The device namespace (the broker user name when there is one).
        var name: String
        var model: String
        var images: [Data]
        var rate: Double
        var count: Int
        var cameras: Int
        var topK: Int?
        /// How long to wait for the last answers after the last request was sent.
        var drainTimeout: Duration
    }

    /// What the run produced.
    struct Report: Sendable {
        var requests: Int
        var sent: Int
        var succeeded: Int
        var failed: Int
        var expired: Int
        var unanswered: Int
        /// Publications the broker refused or that timed out.
        var publishErrors: Int
        var latency: LatencyStats?
        /// From the first request sent to the last answer received.
        var seconds: Double
        var throughput: Double { seconds > 0 ? Double(succeeded + failed + expired) / seconds : 0 }
        var answered: Int { succeeded + failed + expired }
        /// Example failure reasons (at most 5 distinct).
        var failureReasons: [String]
    }

    let settings: Settings
    let runID: String
    private let lock = NSLock()
    private var sentAt: [String: ContinuousClock.Instant] = [:]
    private var latencies: [Double] = []
    private var succeeded = 0, failed = 0, expired = 0, publishErrors = 0, sent = 0
    private var reasons: [String] = []
    private var lastAnswer: ContinuousClock.Instant?

    init(settings: Settings) {
        self.settings = settings
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        runID = String((0..<6).map { _ in letters.randomElement()! })
    }

    private func replyTopic(camera: Int) -> String {
        Topics.deviceReply(device: settings.name, key: "\(runID)-c\(camera)")
    }

    /// The counts so far, for a progress line.
    func progress() -> String {
        lock.withLock {
            let stats = LatencyStats(latencies)
            let inFlight = sent - succeeded - failed - expired - publishErrors
            var line = "sent \(sent)/\(settings.count)  answered \(succeeded + failed + expired)  failed \(failed + expired)  in flight \(inFlight)"
            if let stats { line += String(format: "  p50 %.0f ms  p99 %.0f ms", stats.p50, stats.p99) }
            return line
        }
    }

    /// Connects the cameras, runs the schedule, waits for the answers and disconnects.
    func run(progressEvery interval: Duration?, progress report: @escaping @Sendable (String) -> Void) async throws -> Report {
        var clients: [MQTTClient] = []
        var listeners: [Task<Void, Never>] = []
        defer { for task in listeners { task.cancel() } }
        let cameras = max(1, settings.cameras)
        // A device account is bound to one client id, its name (see docs/security.md): with an
        // account, the cameras share its one connection; anonymous, each has its own.
        let connections = settings.broker.username == nil ? cameras : 1
        for index in 0..<connections {
            var config = settings.broker
            config.clientID = settings.broker.username
                ?? "\(settings.name)-cam\(index)-\(ProcessInfo.processInfo.processIdentifier)-\(runID)"
            let client = MQTTClient(config)
            try await client.connect()
            clients.append(client)
        }
        for camera in 0..<cameras {
            let replies = try await clients[camera % connections].subscribe(replyTopic(camera: camera), qos: 1)
            listeners.append(Task { [self] in
                for await message in replies { self.received(message) }
            })
        }
        let progressTask: Task<Void, Never>? = interval.map { every in
            Task { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: every)
                    if Task.isCancelled { break }
                    report(self.progress())
                }
            }
        }
        defer { progressTask?.cancel() }

        let start = ContinuousClock.now
        let period = Duration.seconds(1.0 / max(0.001, settings.rate))
        await withDiscardingTaskGroup { group in
            for n in 0..<settings.count {
                try? await Task.sleep(until: start + period * n, clock: .continuous)
                let camera = n % cameras
                let client = clients[camera % clients.count]
                let key = "\(runID)-c\(camera)-\(n)"
                let (payload, properties) = message(key: key, image: settings.images[n % settings.images.count], camera: camera)
                lock.withLock {
                    sentAt[key] = .now
                    sent += 1
                }
                group.addTask { [self] in
                    do {
                        try await client.publish(Topics.deviceRequests(device: settings.name, model: settings.model),
                                                 payload: payload, qos: 1, properties: properties)
                    } catch {
                        lock.withLock {
                            publishErrors += 1
                            sentAt[key] = nil
                            if reasons.count < 5 { reasons.append("publish: \(error)") }
                        }
                    }
                }
            }
        }
        // Wait for the answers still due.
        let deadline = ContinuousClock.now + settings.drainTimeout
        while ContinuousClock.now < deadline {
            if lock.withLock({ sentAt.isEmpty }) { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        progressTask?.cancel()
        for client in clients { await client.disconnect() }
        return lock.withLock {
            let end = lastAnswer ?? .now
            let seconds = Double((end - start).components.attoseconds) / 1e18 + Double((end - start).components.seconds)
            return Report(requests: settings.count, sent: sent, succeeded: succeeded, failed: failed, expired: expired,
                          unanswered: sentAt.count, publishErrors: publishErrors, latency: LatencyStats(latencies),
                          seconds: seconds, failureReasons: reasons)
        }
    }

    /// The request for job `key`, in the form of the camera's protocol version.
    private func message(key: String, image: Data, camera: Int) -> (payload: [UInt8], properties: MQTTProperties) {
        if settings.broker.protocolVersion == .v5 {
            var properties = MQTTProperties()
            properties.contentType = "image/jpeg"
            properties.responseTopic = replyTopic(camera: camera)
            properties.correlationData = Array(key.utf8)
            properties.userProperties = [MQTTUserProperty(name: "job_id", value: key)]
            if let k = settings.topK { properties.userProperties.append(MQTTUserProperty(name: "top_k", value: String(k))) }
            return ([UInt8](image), properties)
        }
        let request = JobRequest(jobID: key, model: settings.model, topK: settings.topK ?? 5, image: image,
                                 replyTopic: replyTopic(camera: camera))
        return ([UInt8](request.jsonPayload()), MQTTProperties())
    }

    private func received(_ message: MQTTMessage) {
        let now = ContinuousClock.now
        guard let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload)) else { return }
        let prefix = "\(settings.name)_"
        let key = result.jobID.hasPrefix(prefix) ? String(result.jobID.dropFirst(prefix.count)) : result.jobID
        lock.withLock {
            guard let start = sentAt.removeValue(forKey: key) else { return }
            let elapsed = now - start
            latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            lastAnswer = now
            switch result.status {
            case .succeeded: succeeded += 1
            case .expired: expired += 1
            default:
                failed += 1
                if let reason = result.error, reasons.count < 5, !reasons.contains(reason) { reasons.append(reason) }
            }
        }
    }
}
