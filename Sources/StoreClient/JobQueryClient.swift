import Foundation
import Jobs
import Logging
import MQTT

/// Asks the result store for job records over MQTT v5 request/response, and
/// waits for its ledger receipts (used by the HTTP ingress).
///
/// ```swift
/// let queries = JobQueryClient(client: client, replyTopic: JobQueryClient.uniqueReplyTopic())
/// try await queries.start()                 // once, after client.connect()
/// let record = try await queries.job(id)    // nil: the store does not know the job
/// ```
///
/// Each query is published on ``Jobs/Topics/storeQuery`` with the client's
/// reply topic as response topic and a fresh random correlation id; one
/// subscription to the reply topic routes every answer to its waiting caller
/// by correlation id, so any number of queries may run concurrently. A reply
/// that comes after its caller gave up is dropped.
public final class JobQueryClient: @unchecked Sendable {
    // @unchecked: the mutable state below is only touched with `lock` held.

    /// Where the store's answers arrive; unique to this client.
    public let replyTopic: String
    private let client: MQTTClient
    private let logger: Logger

    private let lock = NSLock()
    private var phase = Phase.idle
    private var pending: [[UInt8]: Slot] = [:]
    private var listener: Task<Void, Never>?
    /// Counts start()s, so a finished listener only closes its own generation.
    private var generation = 0

    private enum Phase { case idle, started, closed }

    /// One outstanding query.
    private enum Slot {
        /// Published; `continuation` is set once the caller awaits the reply.
        case waiting(CheckedContinuation<MQTTMessage, any Error>?)
        /// The reply came before the caller awaited it.
        case arrived(MQTTMessage)
        /// The reply subscription ended.
        case failed(JobQueryError)
    }

    /// `client` must speak MQTT v5 (response topic and correlation data).
    public init(client: MQTTClient, replyTopic: String, logger: Logger = Logger(label: "conveyor.job-query")) {
        self.client = client
        self.replyTopic = replyTopic
        self.logger = logger
    }

    deinit {
        listener?.cancel()
    }

    /// A reply topic no other client uses: `conveyor/v1/store/replies/<random id>`.
    public static func uniqueReplyTopic() -> String {
        Topics.storeReply(client: JobID.make())
    }

    /// Subscribes to the reply topic and starts routing replies. Call once,
    /// after the MQTT client connected; later calls do nothing while the
    /// subscription lasts. After the client disconnected (which ends the
    /// subscription and fails pending queries), call it again once the client
    /// is connected again.
    public func start() async throws {
        guard lock.withLock({ phase != .started }) else { return }
        let replies = try await client.subscribe(replyTopic, qos: 1)
        let won: Bool = lock.withLock {
            guard phase != .started else { return false }
            phase = .started
            generation += 1
            let current = generation
            listener = Task { [weak self] in
                for await message in replies {
                    guard let self else { return }
                    self.deliver(message)
                }
                self?.closeAll(generation: current)
            }
            return true
        }
        // A concurrent start() got there first: drop the extra subscription.
        if !won { await replies.cancel() }
    }

    /// Stops routing replies; waiting and later queries fail with
    /// ``JobQueryError/connectionClosed``.
    public func stop() {
        lock.lock()
        let task = listener
        let current = generation
        lock.unlock()
        task?.cancel()
        closeAll(generation: current)
    }

    /// The store's record of job `id`, or `nil` if the store does not know it.
    ///
    /// Throws ``JobQueryError/timeout(jobID:after:)`` if no answer comes within
    /// `timeout`, ``JobQueryError/storeError(jobID:message:)`` if the store
    /// answered with another error, and `CancellationError` if the calling
    /// task is cancelled.
    public func job(_ id: String, timeout: Duration = .seconds(5)) async throws -> JobResult? {
        try Self.decode(try await ask(StoreQuery(jobID: id), about: id, timeout: timeout), jobID: id)
    }

    /// A page of the store's jobs, newest first (see ``StoreQuery/list(status:model:limit:before:)``).
    /// Throws as ``job(_:timeout:)`` does; a refused filter or cursor is a
    /// ``JobQueryError/storeError(jobID:message:)``.
    public func jobs(status: JobStatus? = nil, model: String? = nil, limit: Int, before: String? = nil,
                     timeout: Duration = .seconds(5)) async throws -> JobPage {
        let query = StoreQuery.list(status: status, model: model, limit: limit, before: before)
        let reply = try await ask(query, about: "(list)", timeout: timeout)
        if let page = try? JSONCoding.decoder.decode(JobPage.self, from: Data(reply.payload)) { return page }
        throw Self.failure(reply, jobID: "(list)")
    }

    /// Asks the store to delete job `id` (cancelling it if it has not ended).
    /// Returns `nil` if the store does not know the job; throws as
    /// ``job(_:timeout:)`` does.
    public func delete(_ id: String, timeout: Duration = .seconds(5)) async throws -> JobDeletion? {
        let reply = try await ask(StoreQuery.delete(jobID: id), about: id, timeout: timeout)
        if let deletion = try? JSONCoding.decoder.decode(JobDeletion.self, from: Data(reply.payload)) { return deletion }
        if Self.isNotFound(reply) { return nil }
        throw Self.failure(reply, jobID: id)
    }

    /// Publishes `query` and returns the store's reply.
    private func ask(_ query: StoreQuery, about jobID: String, timeout: Duration) async throws -> MQTTMessage {
        let key = Self.correlationID()
        try expect(key)
        defer { forget(key) }

        var properties = MQTTProperties()
        properties.responseTopic = replyTopic
        properties.correlationData = key
        properties.contentType = "application/json"
        // A query the store only sees after the caller gave up is not worth answering.
        let (seconds, attoseconds) = timeout.components
        properties.messageExpiryInterval = UInt32(clamping: max(1, seconds + (attoseconds > 0 ? 1 : 0)))
        try await client.publish(Topics.storeQuery, payload: query.jsonPayload(), qos: 1,
                                 retain: false, properties: properties)
        return try await reply(key, jobID: jobID, timeout: timeout)
    }

    /// Runs `publish` (which publishes job `jobID`'s request asking for a
    /// ``Jobs/LedgerReceipt`` on ``replyTopic``) and returns once the result
    /// store has committed the request to the ledger.
    ///
    /// The receipt is awaited from before `publish` runs, so a fast one is not
    /// missed. Throws ``JobQueryError/timeout(jobID:after:)`` if no receipt
    /// comes within `timeout` (the store is down, or lost the request before
    /// committing it), ``JobQueryError/storeError(jobID:message:)`` if the
    /// store could not record it, and whatever `publish` throws.
    public func publishRecorded(jobID: String, timeout: Duration,
                                publish: () async throws -> Void) async throws {
        let key = LedgerReceipt.correlation(jobID: jobID)
        try expect(key)
        defer { forget(key) }
        try await publish()
        let message = try await reply(key, jobID: jobID, timeout: timeout)
        guard let receipt = try? JSONCoding.decoder.decode(LedgerReceipt.self, from: Data(message.payload)) else {
            throw JobQueryError.invalidReply(jobID: jobID, reason: String(decoding: message.payload.prefix(200), as: UTF8.self))
        }
        if let error = receipt.error { throw JobQueryError.storeError(jobID: jobID, message: error) }
    }

    /// Starts keeping the reply to `key` (before the request goes out, so a fast reply is not lost).
    private func expect(_ key: [UInt8]) throws {
        try lock.withLock {
            switch phase {
            case .idle: throw JobQueryError.notStarted
            case .closed: throw JobQueryError.connectionClosed
            case .started: pending[key] = .waiting(nil)
            }
        }
    }

    /// Stops keeping the reply to `key`.
    private func forget(_ key: [UInt8]) {
        _ = lock.withLock { pending.removeValue(forKey: key) }
    }

    /// The reply to `key`, or ``JobQueryError/timeout(jobID:after:)``.
    private func reply(_ key: [UInt8], jobID: String, timeout: Duration) async throws -> MQTTMessage {
        try await withThrowingTaskGroup(of: MQTTMessage.self) { group in
            group.addTask { try await self.awaitReply(key) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw JobQueryError.timeout(jobID: jobID, after: timeout)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// 16 random bytes.
    private static func correlationID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in generator.next() }
    }

    /// Reads a reply: a record, `nil` for "job not found", or an error.
    static func decode(_ reply: MQTTMessage, jobID: String) throws -> JobResult? {
        if let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(reply.payload)) {
            return result
        }
        if isNotFound(reply) { return nil }
        throw failure(reply, jobID: jobID)
    }

    /// Whether a reply is the store's "job not found".
    private static func isNotFound(_ reply: MQTTMessage) -> Bool {
        (try? JSONCoding.decoder.decode(StoreErrorReply.self, from: Data(reply.payload)))?.error == StoreErrorReply.notFound
    }

    /// The error a reply that is not the expected answer stands for.
    private static func failure(_ reply: MQTTMessage, jobID: String) -> JobQueryError {
        if let failure = try? JSONCoding.decoder.decode(StoreErrorReply.self, from: Data(reply.payload)) {
            return .storeError(jobID: jobID, message: failure.error)
        }
        return .invalidReply(jobID: jobID, reason: String(decoding: reply.payload.prefix(200), as: UTF8.self))
    }

    // MARK: - Routing

    /// Waits for the reply to query `key`, honouring cancellation.
    private func awaitReply(_ key: [UInt8]) async throws -> MQTTMessage {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<MQTTMessage, any Error>) in
                let outcome: Result<MQTTMessage, any Error>? = lock.withLock {
                    switch pending[key] {
                    case .arrived(let message):
                        return .success(message)
                    case .failed(let error):
                        return .failure(error)
                    case .waiting:
                        if Task.isCancelled { return .failure(CancellationError()) }
                        pending[key] = .waiting(continuation)
                        return nil
                    case nil:
                        return .failure(JobQueryError.connectionClosed)
                    }
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let continuation: CheckedContinuation<MQTTMessage, any Error>? = lock.withLock {
                guard case .waiting(let continuation?) = pending[key] else { return nil }
                pending[key] = .waiting(nil)
                return continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Hands a reply to the query with its correlation id.
    private func deliver(_ message: MQTTMessage) {
        guard let key = message.properties.correlationData else {
            logger.debug("reply without correlation data", metadata: ["topic": "\(message.topic)"])
            return
        }
        let continuation: CheckedContinuation<MQTTMessage, any Error>? = lock.withLock {
            switch pending[key] {
            case .waiting(let continuation?):
                pending[key] = .arrived(message)
                return continuation
            case .waiting(nil):
                pending[key] = .arrived(message)
                return nil
            case .arrived, .failed, nil:
                return nil  // a duplicate, or a reply nobody waits for any more
            }
        }
        if let continuation {
            continuation.resume(returning: message)
        } else {
            logger.trace("unclaimed reply", metadata: ["topic": "\(message.topic)"])
        }
    }

    /// The reply subscription of `generation` ended: fails every waiting query.
    private func closeAll(generation: Int) {
        let continuations: [CheckedContinuation<MQTTMessage, any Error>] = lock.withLock {
            guard generation == self.generation, phase == .started else { return [] }
            phase = .closed
            var waiting: [CheckedContinuation<MQTTMessage, any Error>] = []
            for (key, slot) in pending {
                if case .waiting(let continuation) = slot {
                    if let continuation { waiting.append(continuation) }
                    pending[key] = .failed(.connectionClosed)
                }
            }
            return waiting
        }
        for continuation in continuations { continuation.resume(throwing: JobQueryError.connectionClosed) }
    }
}
