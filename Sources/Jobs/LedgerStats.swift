/// The result store's ledger counts, published retained on
/// ``Topics/ledgerStats`` every second. The ingress refuses new jobs (503)
/// while `queued` is at its limit, or while no fresh stats arrive (the ledger
/// cannot record what it would accept).
public struct LedgerStats: Codable, Sendable, Equatable {
    /// Unfinished jobs no worker has started (in a worker's backlog, at the
    /// broker, or waiting to be published again).
    public var queued: Int
    /// Unfinished jobs a worker has started.
    public var running: Int
    /// When the counts were taken (ms since 1970).
    public var at: Int64

    public init(queued: Int, running: Int, at: Int64) {
        self.queued = queued
        self.running = running
        self.at = at
    }
}
