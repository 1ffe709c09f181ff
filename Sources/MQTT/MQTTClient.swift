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
    let logger: Logger
    let mosquitto: Mosquitto
    let state = Locked(State())
    /// Serialises the blocking lifecycle calls (start, stop and restart of the network thread)
    /// and keeps them off the cooperative thread pool.
    let lifecycle: DispatchQueue
    let connectedGauge: Gauge
    let reconnects: Counter

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
    func startNetworkThread() {
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
    /// and 2 once the broker has acknowledged it. Properties are sent only with MQTT 5.
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
        properties: MQTTProperties = MQTTProperties()
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
            if qos == 0 {
                // The "written" callback for QoS 0 may already have come, or may come later.
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
        let entry = SubscriptionEntry(filter: filter, matchFilter: TopicFilter.local(filter), qos: qos, continuation: continuation)
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
                        if TopicFilter.matches(message.topic, filter: entry.matchFilter) {
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

    func dropSubscription(_ id: UInt64) {
        let entry = state.withLock { $0.subscriptions.removeValue(forKey: id) }
        entry?.continuation.finish()
    }

    // MARK: - Shutting down

    func shutdown(failing error: MQTTError) async {
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

    func finishShutdown(_ taken: State.Taken, failing error: MQTTError) {
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

    func waitUntilConnected(_ deadline: ContinuousClock.Instant, _ what: String) async throws {
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
    func wait(
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

    func resolve(_ id: UInt64, with result: Result<WaitResult, any Error>) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(with: result)
    }

    func onLifecycleQueue<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            lifecycle.async {
                continuation.resume(returning: body())
            }
        }
    }
}
