import Dispatch
import Logging
import Metrics

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
