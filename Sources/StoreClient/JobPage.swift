import Foundation
import Jobs

/// One page of the store's job listing, newest first (`GET /jobs`).
public struct JobPage: Codable, Sendable, Equatable {
    public var jobs: [JobResult]
    /// Pass as `before` to get the next page; `nil` on the last page.
    public var next: String?

    public init(jobs: [JobResult], next: String?) {
        self.jobs = jobs
        self.next = next
    }

    /// Where a page starts: jobs queued strictly before this point, newest
    /// first. Its text form (the `next` / `before` cursor) is
    /// `<queued_at ms>.<job id>`; a bare number of milliseconds since 1970
    /// also reads as a cursor (every job queued before then).
    public struct Cursor: Sendable, Equatable {
        public var queuedAt: Int64
        /// The last job of the previous page (ties on `queuedAt` are ordered by id).
        public var jobID: String?

        public init(queuedAt: Int64, jobID: String?) {
            self.queuedAt = queuedAt
            self.jobID = jobID
        }

        public init?(_ text: String) {
            let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let millis = Int64(parts[0]), millis >= 0 else { return nil }
            if parts.count == 2 {
                guard JobID.isValid(String(parts[1])) else { return nil }
                self.init(queuedAt: millis, jobID: String(parts[1]))
            } else {
                self.init(queuedAt: millis, jobID: nil)
            }
        }

        public var text: String { jobID.map { "\(queuedAt).\($0)" } ?? "\(queuedAt)" }
    }

    enum CodingKeys: String, CodingKey {
        case jobs, next
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobs, forKey: .jobs)
        // Always present: `null` says this is the last page.
        try c.encode(next, forKey: .next)
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
