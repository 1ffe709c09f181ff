import Dispatch
import Logging
import Metrics

// Events from the network thread: messages, acknowledgements, connections made and lost.
extension MQTTClient {

    func handle(_ event: Mosquitto.Event) {
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

    func route(_ message: MQTTMessage) {
        let targets = state.withLock { state in
            state.subscriptions.values.map { ($0.matchFilter, $0.continuation) }
        }
        var delivered = false
        for (filter, continuation) in targets where TopicFilter.matches(message.topic, filter: filter) {
            continuation.yield(message)
            delivered = true
        }
        guard !delivered, keepsEarlyMessages else { return }
        // A resumed persistent session: the broker sends what it queued right after the
        // CONNACK, before this process has subscribed again. Keep it for that subscription.
        let (late, dropped) = state.withLock { state -> ([AsyncStream<MQTTMessage>.Continuation], Bool) in
            let matching = state.subscriptions.values.filter { TopicFilter.matches(message.topic, filter: $0.matchFilter) }
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

    func ackArrived(mid: Int32, _ ack: Ack) {
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

    func deliver(_ ack: Ack, to target: AckTarget) {
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

    func connectionEstablished(sessionPresent: Bool) {
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

    func connectionRefused(code: Int) {
        let reason = Mosquitto.connackString(code, v5: configuration.protocolVersion == .v5)
        let error = MQTTError.connectionRefused(code: code, reason: reason)
        logger.error("\(error)")
        giveUp(error)
    }

    /// Ends the client from a libmosquitto callback: stops the retries at once
    /// (non-blocking) and joins the network thread on the lifecycle queue.
    func giveUp(_ error: MQTTError) {
        guard let taken = state.withLock({ $0.beginShutdown() }) else { return }
        mosquitto.disconnect()
        lifecycle.async { [self] in
            mosquitto.stopLoop()
            finishShutdown(taken, failing: error)
        }
    }

    enum AfterLoss {
        case nothing
        case restartLoop(attempt: Int)
        case fail(MQTTError)
    }

    func connectionLost(code: Int) {
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
    var sessionExpiry: UInt32? {
        configuration.protocolVersion == .v5 ? configuration.sessionExpiry : nil
    }

    /// Tries `restartLoop` again after the backoff delay.
    func scheduleRestart() {
        let attempt = state.withLock { state -> Int in
            state.reviveAttempts += 1
            return state.reviveAttempts
        }
        restartLoop(after: attempt)
    }

    /// Starts the loop again after the backoff for the `attempt`-th try: the
    /// minimum delay, doubled each attempt, at most the maximum (seconds).
    func restartLoop(after attempt: Int) {
        let minimum = max(1, configuration.reconnectDelayMin)
        let delay = min(minimum << min(attempt - 1, 16), max(minimum, configuration.reconnectDelayMax))
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(delay))
            await self?.restartLoop()
        }
    }

    /// Starts libmosquitto's loop again after it ended by itself (see `connectionLost`).
    func restartLoop() async {
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
}
