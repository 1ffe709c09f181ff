import Dispatch
import Logging
import Metrics

/// An MQTT client over libmosquitto, with async/await operations.
///
/// ```swift
/// let client = MQTTClient(MQTTConfiguration(host: "broker", clientID: "worker-1"))
/// try await client.connect()
/// let jobs = try await client.subscribe("$share/workers/jobs/+")
/// for await job in jobs { try await client.publish("results/\(id)", payload: result) }
/// ```
///
/// libmosquitto's network thread (`mosquitto_loop_start`) does all I/O, reconnects with
/// backoff after a lost connection, and after every reconnect the client subscribes again
/// to all active subscriptions. Publishing or subscribing while the connection is down
/// waits for it to come back, up to ``MQTTConfiguration/operationTimeout``.
///
/// `Sendable`: every stored property is immutable; the mutable state lives in a
/// `Locked` (an `NSLock`-protected box), and the libmosquitto handle is thread-safe. The lock is
/// never held while calling into libmosquitto, so the network thread's callbacks, which take it
/// too, cannot deadlock with callers.
public final class MQTTClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: MQTTConfiguration
    private let logger: Logger
    private let mosquitto: Mosquitto
    private let state = Locked(State())
    /// Serialises the blocking lifecycle calls (start, stop and restart of the network thread)
    /// and keeps them off the cooperative thread pool.
    private let lifecycle: DispatchQueue
    private let connectedGauge: Gauge
    private let reconnects: Counter

    /// Creates a client; nothing happens on the network until ``connect()``.
    /// `service` labels its metrics: `conveyor_mqtt_connected{service}` (1
    /// while connected) and `conveyor_mqtt_reconnects_total{service}`.
    public init(_ configuration: MQTTConfiguration, logger: Logger = Logger(label: "mqtt"), service: String = "mqtt") {
        var logger = logger
        logger[metadataKey: "mqtt.client"] = "\(configuration.clientID)"
        self.configuration = configuration
        self.logger = logger
        self.connectedGauge = Gauge(label: "conveyor_mqtt_connected", dimensions: [("service", service)])
        self.reconnects = Counter(label: "conveyor_mqtt_reconnects_total", dimensions: [("service", service)])
        self.lifecycle = DispatchQueue(label: "mqtt.lifecycle.\(configuration.clientID)")
        self.mosquitto = Mosquitto(clientID: configuration.clientID, cleanStart: configuration.cleanStart)
        mosquitto.configure(configuration, logLines: logger.logLevel <= .trace)
        mosquitto.setEventHandler { [weak self] event in
            self?.handle(event)
        }
    }

    deinit {
        // Nobody can be waiting (a waiting call keeps the client alive); end the streams.
        let subscriptions = state.withLock { state in
            defer { state.subscriptions = [:] }
            return Array(state.subscriptions.values)
        }
        for subscription in subscriptions {
            subscription.continuation.finish()
        }
    }

    /// `true` while the client has an accepted connection to the broker.
    public var isConnected: Bool {
        state.withLock { $0.phase == .connected }
    }

    // MARK: - Connecting

    /// Connects: starts the network thread and waits for the broker's CONNACK, at most
    /// ``MQTTConfiguration/connectTimeout``. If the broker is not reachable yet, the network
    /// thread keeps trying (with backoff) until the timeout.
    ///
    /// Throws ``MQTTError/connectionRefused(code:reason:)`` if the broker refuses the
    /// connection (it is not retried), ``MQTTError/timeout(_:)`` if no CONNACK came in time
    /// (the network thread is stopped again), or ``MQTTError/library(code:message:)`` for a
    /// configuration libmosquitto rejects. Returns at once if already connected.
    public func connect() async throws {
        if let error = mosquitto.setupError {
            throw error
        }
        let deadline = ContinuousClock.now + configuration.connectTimeout
        // The waiter is registered before the network thread starts, so even a refusal that
        // comes at once finds it.
        var starting = false
        do {
            _ = try await wait(until: deadline, "CONNACK from \(configuration.host):\(configuration.port)") { state, id in
                switch state.phase {
                case .connected:
                    return .connected
                case .connecting, .reconnecting:
                    state.connectionWaiters.append(id)
                    return nil
                case .idle:
                    state.phase = .connecting
                    state.connectionWaiters.append(id)
                    starting = true
                    return nil
                case .closing:
                    throw MQTTError.notConnected
                }
            } afterRegistering: { _ in
                if starting {
                    self.startNetworkThread()
                }
            }
        } catch let error as MQTTError {
            if starting, case .timeout = error {
                await shutdown(failing: error)
            }
            throw error
        } catch {
            if starting {
                await shutdown(failing: .notConnected)
            }
            throw error
        }
    }

    /// Starts the non-blocking connect and the network thread on the lifecycle queue; if
    /// libmosquitto refuses, fails everyone waiting for the connection.
    private func startNetworkThread() {
        let (host, port, keepAlive) = (configuration.host, configuration.port, configuration.keepAlive)
        logger.debug("connecting to \(host):\(port)")
        lifecycle.async { [self] in
            if let expiry = sessionExpiry {
                // Connections with CONNECT properties are made (and remade) by us.
                let rc = mosquitto.connectV5(host: host, port: port, keepAlive: keepAlive, sessionExpiry: expiry)
                if rc == Mosquitto.success {
                    let loop = mosquitto.startLoop()
                    if loop == Mosquitto.success { return }
                    guard let taken = state.withLock({ $0.beginShutdown() }) else { return }
                    mosquitto.disconnect()
                    finishShutdown(taken, failing: .library(code: Int(loop), message: Mosquitto.errorString(loop)))
                } else if rc == Mosquitto.invalid {
                    guard let taken = state.withLock({ $0.beginShutdown() }) else { return }
                    finishShutdown(taken, failing: .library(code: Int(rc), message: Mosquitto.errorString(rc)))
                } else {
                    logger.debug("connect: \(Mosquitto.errorString(rc)); trying again")
                    scheduleRestart()
                }
                return
            }
            var rc = mosquitto.connectAsync(host: host, port: port, keepAlive: keepAlive)
            // A refused or unreachable TCP connect is retried by the network thread;
            // only bad arguments are final.
            if rc != Mosquitto.invalid {
                rc = mosquitto.startLoop()
            }
            guard rc != Mosquitto.success, let taken = state.withLock({ $0.beginShutdown() }) else { return }
            mosquitto.disconnect()
            mosquitto.stopLoop()
            finishShutdown(taken, failing: .library(code: Int(rc), message: Mosquitto.errorString(rc)))
        }
    }

    /// Disconnects cleanly: sends DISCONNECT, stops the network thread, finishes every
    /// subscription's stream and fails pending operations with ``MQTTError/notConnected``.
    /// The client can ``connect()`` again afterwards.
    public func disconnect() async {
        await shutdown(failing: .notConnected)
        connectedGauge.record(0)
        logger.debug("disconnected")
    }

    // MARK: - Publishing

    /// Publishes a message. With QoS 0 it returns once libmosquitto has queued it; with QoS 1
    /// and 2 once the broker has acknowledged it, unless `waitForAcknowledgement` is false:
    /// then once libmosquitto has it (it still delivers it, and sends it again after a
    /// reconnect), for messages whose sender must not wait a round trip and does not need to
    /// know of a refusal. Properties are sent only with MQTT 5.
    ///
    /// If the connection is down, waits for the reconnect first. The whole call is bounded by
    /// ``MQTTConfiguration/operationTimeout``.
    ///
    /// Throws ``MQTTError/publishRefused(topic:code:reason:)`` if the broker refuses it (MQTT 5
    /// reason code >= 0x80, e.g. 135 "Not authorized"; MQTT 3.1.1 brokers drop such messages
    /// silently), ``MQTTError/timeout(_:)``, ``MQTTError/notConnected``, or
    /// ``MQTTError/library(code:message:)`` for an invalid topic or QoS.
    public func publish(
        _ topic: String,
        payload: [UInt8],
        qos: Int = 1,
        retain: Bool = false,
        properties: MQTTProperties = MQTTProperties(),
        waitForAcknowledgement: Bool = true
    ) async throws {
        guard (0...2).contains(qos) else {
            throw MQTTError.library(code: Int(Mosquitto.invalid), message: "QoS must be 0, 1 or 2, not \(qos)")
        }
        let deadline = ContinuousClock.now + configuration.operationTimeout
        let sentProperties = configuration.protocolVersion == .v5 ? properties : nil
        while true {
            try await waitUntilConnected(deadline, "reconnect before publishing to '\(topic)'")
            let (rc, mid) = mosquitto.publish(topic: topic, payload: payload, qos: qos, retain: retain, properties: sentProperties)
            if rc == Mosquitto.noConnection {
                // The connection dropped between the check and the call (libmosquitto keeps
                // QoS 1/2 messages queued itself, so this is QoS 0). Wait for the reconnect.
                try await Task.sleep(for: .milliseconds(10))
                continue
            }
            guard rc == Mosquitto.success else {
                throw MQTTError.library(code: Int(rc), message: "publishing to '\(topic)': \(Mosquitto.errorString(rc))")
            }
            if qos == 0 || !waitForAcknowledgement {
                // The "written" callback for QoS 0 (the acknowledgement for QoS 1 and 2) may
                // already have come, or may come later.
                _ = state.withLock { $0.claim(mid: mid, for: .ignore) }
                return
            }
            let result = try await wait(until: deadline, "PUBACK for '\(topic)'") { state, id in
                try state.requireActive()
                return state.claim(mid: mid, for: .publish(id)).map { $0.waitResult }
            }
            if case let .acknowledged(reason) = result, reason >= 0x80 {
                throw MQTTError.publishRefused(topic: topic, code: reason, reason: Mosquitto.reasonString(reason))
            }
            return
        }
    }

    // MARK: - Subscribing

    /// Subscribes to `filter` and waits for the broker's SUBACK (bounded by
    /// ``MQTTConfiguration/operationTimeout``, including any wait for a reconnect).
    ///
    /// The returned sequence yields every message whose topic matches the filter (a
    /// `$share/group/` prefix is ignored for matching) until ``MQTTSubscription/cancel()``,
    /// ``disconnect()``, or the iterating task is cancelled. Throws
    /// ``MQTTError/subscriptionRefused(filter:code:)`` if the broker refuses the filter.
    public func subscribe(_ filter: String, qos: Int = 1) async throws -> MQTTSubscription {
        guard (0...2).contains(qos) else {
            throw MQTTError.library(code: Int(Mosquitto.invalid), message: "QoS must be 0, 1 or 2, not \(qos)")
        }
        let deadline = ContinuousClock.now + configuration.operationTimeout
        try await waitUntilConnected(deadline, "reconnect before subscribing to '\(filter)'")

        let (stream, continuation) = AsyncStream.makeStream(of: MQTTMessage.self, bufferingPolicy: .unbounded)
        let entry = SubscriptionEntry(filter: filter, matchFilter: Self.matchFilter(for: filter), qos: qos, continuation: continuation)
        let subscriptionID = state.withLock { state in state.makeID() }
        continuation.onTermination = { [weak self] termination in
            // The consumer's task was cancelled or the sequence dropped: unsubscribe.
            if case .cancelled = termination, let self {
                Task { await self.removeSubscription(subscriptionID) }
            }
        }

        let result: WaitResult
        do {
            result = try await wait(until: deadline, "SUBACK for '\(filter)'") { state, id in
                try state.requireActive()
                state.subscriptions[subscriptionID] = entry
                state.filterWaiters[filter, default: []].append(id)
                // Messages of a resumed session that came before this subscription, in order.
                if !state.early.isEmpty {
                    var kept: [MQTTMessage] = []
                    for message in state.early {
                        if Self.topic(message.topic, matchesFilter: entry.matchFilter) {
                            entry.continuation.yield(message)
                        } else {
                            kept.append(message)
                        }
                    }
                    state.early = kept
                }
                return nil
            } afterRegistering: { id in
                let (rc, mid) = self.mosquitto.subscribe(filter, qos: qos)
                if rc == Mosquitto.success {
                    let early = self.state.withLock { $0.claim(mid: mid, for: .filter(filter)) }
                    if let early {
                        self.deliver(early, to: .filter(filter))
                    }
                } else if rc != Mosquitto.noConnection {
                    // (After a lost connection the reconnect subscribes again and answers us.)
                    self.resolve(id, with: .failure(MQTTError.library(
                        code: Int(rc), message: "subscribing to '\(filter)': \(Mosquitto.errorString(rc))")))
                }
            }
        } catch {
            dropSubscription(subscriptionID)
            throw error
        }
        if case let .granted(code) = result, code >= 0x80 {
            dropSubscription(subscriptionID)
            throw MQTTError.subscriptionRefused(filter: filter, code: code)
        }
        logger.debug("subscribed to \(filter)")
        return MQTTSubscription(stream: stream, client: self, id: subscriptionID, filter: filter)
    }

    /// Ends a subscription's stream and, if no other subscription of this client uses the
    /// same filter, unsubscribes from the broker (waiting for the UNSUBACK, errors ignored).
    func removeSubscription(_ id: UInt64) async {
        let (entry, stillUsed, connected) = state.withLock { state in
            let entry = state.subscriptions.removeValue(forKey: id)
            let stillUsed = entry.map { removed in state.subscriptions.values.contains { $0.filter == removed.filter } } ?? true
            return (entry, stillUsed, state.phase == .connected)
        }
        guard let entry else { return }
        entry.continuation.finish()
        guard !stillUsed, connected else { return }
        let (rc, mid) = mosquitto.unsubscribe(entry.filter)
        guard rc == Mosquitto.success else { return }
        let deadline = ContinuousClock.now + configuration.operationTimeout
        _ = try? await wait(until: deadline, "UNSUBACK for '\(entry.filter)'") { state, id in
            try state.requireActive()
            return state.claim(mid: mid, for: .unsubscribe(id)).map { $0.waitResult }
        }
        // A subscribe() for the same filter may have raced with the UNSUBSCRIBE: restore it.
        let again = state.withLock { state in
            state.subscriptions.values.filter { $0.filter == entry.filter }.map(\.qos).max()
        }
        if let qos = again {
            let (rc, mid) = mosquitto.subscribe(entry.filter, qos: qos)
            if rc == Mosquitto.success, let early = state.withLock({ $0.claim(mid: mid, for: .filter(entry.filter)) }) {
                deliver(early, to: .filter(entry.filter))
            }
        }
    }

    private func dropSubscription(_ id: UInt64) {
        let entry = state.withLock { $0.subscriptions.removeValue(forKey: id) }
        entry?.continuation.finish()
    }

    /// The filter used for matching topics locally: without a `$share/<group>/` prefix.
    static func matchFilter(for filter: String) -> String {
        guard filter.hasPrefix("$share/") else { return filter }
        let rest = filter.dropFirst("$share/".count)
        guard let slash = rest.firstIndex(of: "/") else { return filter }
        return String(rest[rest.index(after: slash)...])
    }

    // MARK: - Events from the network thread (never block here)

    private func handle(_ event: Mosquitto.Event) {
        switch event {
        case let .message(message):
            route(message)
        case let .published(mid, reason):
            ackArrived(mid: mid, .published(reason: reason))
        case let .subscribed(mid, granted):
            ackArrived(mid: mid, .subscribed(granted: granted.first ?? 0x80))
        case let .unsubscribed(mid):
            ackArrived(mid: mid, .unsubscribed)
        case let .connected(code, sessionPresent):
            if code == 0 {
                connectionEstablished(sessionPresent: sessionPresent)
            } else {
                connectionRefused(code: code)
            }
        case let .disconnected(code):
            connectionLost(code: code)
        case let .log(level, text):
            logger.trace("libmosquitto(\(level)): \(text)")
        }
    }

    private func route(_ message: MQTTMessage) {
        let targets = state.withLock { state in
            state.subscriptions.values.map { ($0.matchFilter, $0.continuation) }
        }
        var delivered = false
        for (filter, continuation) in targets where Mosquitto.topic(message.topic, matches: filter) {
            continuation.yield(message)
            delivered = true
        }
        guard !delivered, keepsEarlyMessages else { return }
        // A resumed persistent session: the broker sends what it queued right after the
        // CONNACK, before this process has subscribed again. Keep it for that subscription.
        let (late, dropped) = state.withLock { state -> ([AsyncStream<MQTTMessage>.Continuation], Bool) in
            let matching = state.subscriptions.values.filter { Self.topic(message.topic, matchesFilter: $0.matchFilter) }
            guard matching.isEmpty else { return (matching.map(\.continuation), false) }
            state.early.append(message)
            guard state.early.count > Self.earlyMessageLimit else { return ([], false) }
            state.early.removeFirst()
            return ([], true)
        }
        for continuation in late { continuation.yield(message) }
        if dropped {
            logger.error("more than \(Self.earlyMessageLimit) messages arrived for no subscription; dropping the oldest")
        }
    }

    /// How many messages of a resumed session are kept until a subscription claims them.
    static let earlyMessageLimit = 20_000

    /// Whether messages that match no subscription are kept for a later `subscribe`: only
    /// for a persistent session (clean start off, session expiry set).
    private var keepsEarlyMessages: Bool { !configuration.cleanStart && sessionExpiry != nil }

    /// MQTT topic matching (`+`, `#`, and `$` topics not matched by a leading wildcard), in
    /// Swift so that it can run under the state lock.
    static func topic(_ topic: String, matchesFilter filter: String) -> Bool {
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        if t.first?.hasPrefix("$") == true, let first = f.first, first == "+" || first == "#" { return false }
        for (i, level) in f.enumerated() {
            if level == "#" { return true }
            guard i < t.count else { return false }
            if level != "+" && level != t[i] { return false }
        }
        return f.count == t.count
    }

    private func ackArrived(mid: Int32, _ ack: Ack) {
        let target: AckTarget? = state.withLock { state in
            switch state.acks.removeValue(forKey: mid) {
            case let .expecting(target)?:
                return target
            case .arrived?, nil:
                // Came before the caller registered (the race publish() must handle): park it.
                state.acks[mid] = .arrived(ack)
                return nil
            }
        }
        if let target {
            deliver(ack, to: target)
        }
    }

    private func deliver(_ ack: Ack, to target: AckTarget) {
        switch target {
        case .ignore:
            break
        case let .publish(id), let .unsubscribe(id):
            resolve(id, with: .success(ack.waitResult))
        case let .filter(filter):
            let waiters = state.withLock { $0.filterWaiters.removeValue(forKey: filter) ?? [] }
            for id in waiters {
                resolve(id, with: .success(ack.waitResult))
            }
            if waiters.isEmpty, case let .subscribed(code) = ack, code >= 0x80 {
                logger.error("the broker refused the subscription to \(filter) (code \(code))")
            }
        }
    }

    private func connectionEstablished(sessionPresent: Bool) {
        let outcome = state.withLock { state -> (filters: [String: Int], waiters: [UInt64], unsubscribes: [UInt64], again: Bool)? in
            guard state.phase == .connecting || state.phase == .reconnecting else { return nil }
            let again = state.everConnected
            state.phase = .connected
            state.everConnected = true
            state.reviveAttempts = 0
            // SUBACKs and UNSUBACKs of the previous connection will never come.
            var unsubscribes: [UInt64] = []
            for (mid, slot) in state.acks {
                switch slot {
                case .expecting(.filter):
                    state.acks[mid] = nil
                case let .expecting(.unsubscribe(id)):
                    state.acks[mid] = nil
                    unsubscribes.append(id)
                default:
                    break
                }
            }
            // A clean session lost every subscription; a resumed one only those in flight.
            var filters: [String: Int] = [:]
            for entry in state.subscriptions.values where !sessionPresent || state.filterWaiters[entry.filter] != nil {
                filters[entry.filter] = max(filters[entry.filter] ?? 0, entry.qos)
            }
            let waiters = state.connectionWaiters
            state.connectionWaiters = []
            return (filters, waiters, unsubscribes, again)
        }
        guard let outcome else { return }
        for (filter, qos) in outcome.filters {
            let (rc, mid) = mosquitto.subscribe(filter, qos: qos)
            if rc == Mosquitto.success {
                // The SUBACK cannot come before this: it is read by this very thread.
                _ = state.withLock { $0.claim(mid: mid, for: .filter(filter)) }
            } else {
                logger.error("could not subscribe again to \(filter): \(Mosquitto.errorString(rc))")
            }
        }
        connectedGauge.record(1)
        if outcome.again {
            reconnects.increment()
            logger.info("reconnected to \(configuration.host):\(configuration.port), subscribed again to \(outcome.filters.count) filter(s)")
        } else {
            logger.info("connected to \(configuration.host):\(configuration.port)")
        }
        for id in outcome.waiters {
            resolve(id, with: .success(.connected))
        }
        for id in outcome.unsubscribes {
            resolve(id, with: .success(.unsubscribed))
        }
    }

    private func connectionRefused(code: Int) {
        let reason = Mosquitto.connackString(code, v5: configuration.protocolVersion == .v5)
        let error = MQTTError.connectionRefused(code: code, reason: reason)
        logger.error("\(error)")
        giveUp(error)
    }

    /// Ends the client from a libmosquitto callback: stops the retries at once
    /// (non-blocking) and joins the network thread on the lifecycle queue.
    private func giveUp(_ error: MQTTError) {
        guard let taken = state.withLock({ $0.beginShutdown() }) else { return }
        mosquitto.disconnect()
        lifecycle.async { [self] in
            mosquitto.stopLoop()
            finishShutdown(taken, failing: error)
        }
    }

    private enum AfterLoss {
        case nothing
        case restartLoop(attempt: Int)
        case fail(MQTTError)
    }

    private func connectionLost(code: Int) {
        let wasConnected = state.withLock { $0.phase == .connected }
        let ownReconnect = sessionExpiry != nil
        let next = state.withLock { state -> AfterLoss in
            switch state.phase {
            case .idle, .closing:
                return .nothing
            case .connected:
                state.phase = .reconnecting
            case .connecting, .reconnecting:
                break
            }
            // libmosquitto 2.0 reconnects by itself after network errors, but its loop ends
            // for good after a DISCONNECT from the broker (MQTT 5; code 0 or a reason code)
            // and after "fatal" errors. Then the loop has to be started again.
            let brokerDisconnected = code == 0 || code >= 0x80
            if ownReconnect {
                state.reviveAttempts += 1
                return .restartLoop(attempt: state.reviveAttempts)
            }
            guard brokerDisconnected || Mosquitto.endsLoop(code) else { return .nothing }
            if state.phase == .connecting, !brokerDisconnected {
                return .fail(.library(code: code, message: Mosquitto.errorString(Int32(code))))
            }
            state.reviveAttempts += 1
            return .restartLoop(attempt: state.reviveAttempts)
        }
        if wasConnected {
            connectedGauge.record(0)
            let why = code >= 0x80 ? Mosquitto.reasonString(code) : Mosquitto.errorString(Int32(code))
            logger.warning("connection to \(configuration.host):\(configuration.port) lost (\(code): \(why)); reconnecting")
        }
        switch next {
        case .nothing:
            break
        case let .fail(error):
            logger.error("cannot connect: \(error)")
            giveUp(error)
        case let .restartLoop(attempt):
            if ownReconnect {
                // Stop libmosquitto's own reconnect (it would send no session expiry); we reconnect.
                mosquitto.disconnect()
            }
            restartLoop(after: attempt)
        }
    }

    /// The session expiry interval to send, when the client makes its own connections.
    private var sessionExpiry: UInt32? {
        configuration.protocolVersion == .v5 ? configuration.sessionExpiry : nil
    }

    /// Tries `restartLoop` again after the backoff delay.
    private func scheduleRestart() {
        let attempt = state.withLock { state -> Int in
            state.reviveAttempts += 1
            return state.reviveAttempts
        }
        restartLoop(after: attempt)
    }

    /// Starts the loop again after the backoff for the `attempt`-th try: the
    /// minimum delay, doubled each attempt, at most the maximum (seconds).
    private func restartLoop(after attempt: Int) {
        let minimum = max(1, configuration.reconnectDelayMin)
        let delay = min(minimum << min(attempt - 1, 16), max(minimum, configuration.reconnectDelayMax))
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(delay))
            await self?.restartLoop()
        }
    }

    /// Starts libmosquitto's loop again after it ended by itself (see `connectionLost`).
    private func restartLoop() async {
        await onLifecycleQueue { [self] in
            guard state.withLock({ $0.phase == .reconnecting || $0.phase == .connecting }) else { return }
            logger.debug("restarting the network thread")
            mosquitto.disconnect()
            mosquitto.stopLoop()
            if let expiry = sessionExpiry {
                let rc = mosquitto.connectV5(host: configuration.host, port: configuration.port,
                                             keepAlive: configuration.keepAlive, sessionExpiry: expiry)
                if rc == Mosquitto.success, mosquitto.startLoop() == Mosquitto.success { return }
                logger.debug("reconnect: \(Mosquitto.errorString(rc)); trying again")
                scheduleRestart()
                return
            }
            let rc = mosquitto.reconnectAsync()
            if rc != Mosquitto.success {
                logger.debug("reconnect: \(Mosquitto.errorString(rc)); the network thread retries")
            }
            let loop = mosquitto.startLoop()
            if loop != Mosquitto.success {
                logger.error("cannot restart the network thread: \(Mosquitto.errorString(loop))")
            }
        }
    }

    // MARK: - Shutting down

    private func shutdown(failing error: MQTTError) async {
        guard let taken = state.withLock({ $0.beginShutdown() }) else {
            // Already idle, or another shutdown is under way: wait for it to finish.
            await onLifecycleQueue {}
            return
        }
        await onLifecycleQueue { [mosquitto] in
            mosquitto.disconnect()
            mosquitto.stopLoop()
        }
        finishShutdown(taken, failing: error)
    }

    private func finishShutdown(_ taken: State.Taken, failing error: MQTTError) {
        state.withLock { state in
            state.phase = .idle
            state.everConnected = false
        }
        for waiter in taken.waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: error)
        }
        for subscription in taken.subscriptions {
            subscription.continuation.finish()
        }
    }

    // MARK: - Waiting

    private func waitUntilConnected(_ deadline: ContinuousClock.Instant, _ what: String) async throws {
        _ = try await wait(until: deadline, what) { state, id in
            switch state.phase {
            case .connected:
                return .connected
            case .connecting, .reconnecting:
                state.connectionWaiters.append(id)
                return nil
            case .idle, .closing:
                throw MQTTError.notConnected
            }
        }
    }

    /// Suspends until the waiter `register` sets up is resolved, the deadline passes
    /// (``MQTTError/timeout(_:)``) or the task is cancelled. `register` runs under the lock;
    /// it returns a result to finish at once, or `nil` after recording the waiter's ID where
    /// the event will find it. `afterRegistering` then runs outside the lock.
    private func wait(
        until deadline: ContinuousClock.Instant,
        _ what: String,
        register: (inout State, UInt64) throws -> WaitResult?,
        afterRegistering: ((UInt64) -> Void)? = nil
    ) async throws -> WaitResult {
        let id = state.withLock { $0.makeID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WaitResult, any Error>) in
                let immediate: Result<WaitResult, any Error>? = state.withLock { state in
                    if Task.isCancelled {
                        return .failure(CancellationError())
                    }
                    do {
                        if let result = try register(&state, id) {
                            return .success(result)
                        }
                    } catch {
                        return .failure(error)
                    }
                    let timer = Task { [weak self] in
                        do {
                            try await Task.sleep(until: deadline, clock: .continuous)
                        } catch {
                            return
                        }
                        self?.resolve(id, with: .failure(MQTTError.timeout(what)))
                    }
                    state.waiters[id] = Waiter(continuation: continuation, timer: timer)
                    return nil
                }
                if let immediate {
                    continuation.resume(with: immediate)
                } else {
                    afterRegistering?(id)
                }
            }
        } onCancel: { [weak self] in
            self?.resolve(id, with: .failure(CancellationError()))
        }
    }

    private func resolve(_ id: UInt64, with result: Result<WaitResult, any Error>) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(with: result)
    }

    private func onLifecycleQueue<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            lifecycle.async {
                continuation.resume(returning: body())
            }
        }
    }
}

// MARK: - State

extension MQTTClient {
    enum Phase {
        /// Not started, or shut down.
        case idle
        /// Started, waiting for the first CONNACK.
        case connecting
        case connected
        /// Was connected; libmosquitto is reconnecting.
        case reconnecting
        /// `disconnect()` (or a refusal) is stopping the network thread.
        case closing
    }

    /// What a waiting call is resumed with.
    enum WaitResult: Sendable {
        case connected
        case acknowledged(reason: Int)
        case granted(code: Int)
        case unsubscribed
    }

    /// An acknowledgement from the broker.
    enum Ack {
        case published(reason: Int)
        case subscribed(granted: Int)
        case unsubscribed

        var waitResult: WaitResult {
            switch self {
            case let .published(reason): return .acknowledged(reason: reason)
            case let .subscribed(granted): return .granted(code: granted)
            case .unsubscribed: return .unsubscribed
            }
        }
    }

    /// Who wants the acknowledgement of a message ID.
    enum AckTarget {
        case publish(UInt64)
        case unsubscribe(UInt64)
        /// Everyone waiting for a SUBACK of this filter.
        case filter(String)
        /// Nobody (QoS 0 publications).
        case ignore
    }

    /// The rendezvous for one message ID: the acknowledgement may arrive before the caller
    /// that sent the message has registered for it, or after.
    enum AckSlot {
        case expecting(AckTarget)
        case arrived(Ack)
    }

    struct Waiter {
        var continuation: CheckedContinuation<WaitResult, any Error>
        var timer: Task<Void, Never>?
    }

    struct SubscriptionEntry {
        var filter: String
        var matchFilter: String
        var qos: Int
        var continuation: AsyncStream<MQTTMessage>.Continuation
    }

    struct State {
        var phase = Phase.idle
        var everConnected = false
        var reviveAttempts = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var connectionWaiters: [UInt64] = []
        var acks: [Int32: AckSlot] = [:]
        var filterWaiters: [String: [UInt64]] = [:]
        var subscriptions: [UInt64: SubscriptionEntry] = [:]
        /// Messages that matched no subscription, kept for a persistent session (see `route`).
        var early: [MQTTMessage] = []

        struct Taken {
            var waiters: [Waiter]
            var subscriptions: [SubscriptionEntry]
        }

        mutating func makeID() -> UInt64 {
            nextID &+= 1
            return nextID
        }

        func requireActive() throws {
            if phase == .idle || phase == .closing {
                throw MQTTError.notConnected
            }
        }

        /// Registers `target` for message `mid`, or returns the acknowledgement if it came first.
        mutating func claim(mid: Int32, for target: AckTarget) -> Ack? {
            if case let .arrived(ack)? = acks[mid] {
                acks[mid] = nil
                return ack
            }
            acks[mid] = .expecting(target)
            return nil
        }

        /// Moves to `.closing` and takes every waiter and subscription, or returns `nil` if
        /// already idle or closing.
        mutating func beginShutdown() -> Taken? {
            guard phase != .idle, phase != .closing else { return nil }
            phase = .closing
            let taken = Taken(waiters: Array(waiters.values), subscriptions: Array(subscriptions.values))
            waiters = [:]
            subscriptions = [:]
            connectionWaiters = []
            acks = [:]
            filterWaiters = [:]
            early = []
            return taken
        }
    }
}
