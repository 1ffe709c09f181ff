/// The messages matching one subscription's filter, as an `AsyncSequence`.
///
/// Topics are matched in Swift (`TopicFilter`); a `$share/group/` prefix is stripped
/// for matching. The sequence ends after ``cancel()``, ``MQTTClient/disconnect()`` or a
/// connection refusal. Messages are buffered without limit until they are consumed.
///
/// Only one task may iterate it at a time (it is backed by an `AsyncStream`). Cancelling the
/// iterating task ends the sequence for good and unsubscribes, as ``cancel()`` does.
/// Messages that arrive while the connection is down are lost unless the broker keeps the
/// session; after a reconnect the client subscribes again by itself.
public struct MQTTSubscription: AsyncSequence, Sendable {
    public typealias Element = MQTTMessage
    public typealias Failure = Never

    /// The filter this subscription was made with, including any `$share/group/` prefix.
    public let filter: String
    private let stream: AsyncStream<MQTTMessage>
    private let client: MQTTClient
    private let id: UInt64

    init(stream: AsyncStream<MQTTMessage>, client: MQTTClient, id: UInt64, filter: String) {
        self.stream = stream
        self.client = client
        self.id = id
        self.filter = filter
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Ends the sequence and unsubscribes from the broker (unless another subscription of the
    /// same client uses the same filter). Waits for the broker's UNSUBACK; errors are ignored.
    public func cancel() async {
        await client.removeSubscription(id)
    }

    /// Iterates the messages of an ``MQTTSubscription``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = MQTTMessage
        public typealias Failure = Never

        var base: AsyncStream<MQTTMessage>.Iterator

        /// The next message, or `nil` once the subscription has ended.
        public mutating func next() async -> MQTTMessage? {
            await base.next()
        }
    }
}
