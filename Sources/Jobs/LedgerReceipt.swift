import Foundation

/// The result store's word that a request is committed to the ledger: the
/// point from which the job cannot be lost (see docs/reliability.md).
///
/// A front end asks for it by publishing the request on a service request
/// topic (``Topics/requests(model:version:)``) with the user property
/// ``userProperty`` naming where the receipt goes, one of
/// ``Topics/storeReply(client:)``. The store commits the request, then
/// publishes this receipt there (QoS 0, content type `application/json`) with
/// correlation data ``correlation(jobID:)``. `error` is set when the store
/// could not record the request; then the job is not accepted.
///
/// Requests on device topics never get a receipt: a device's only witness is
/// the broker.
public struct LedgerReceipt: Codable, Sendable, Equatable {
    /// The request's user property that asks for a receipt; its value is the
    /// topic to send it to.
    public static let userProperty = "ledger_receipt"

    /// The correlation data of the receipt for `jobID`. Prefixed, so it can
    /// never equal the 16 random bytes of a store query on the same topic.
    public static func correlation(jobID: String) -> [UInt8] { Array("ledger:\(jobID)".utf8) }

    public var jobID: String
    /// Why the request was not recorded; `nil` when it was.
    public var error: String?

    public init(jobID: String, error: String? = nil) {
        self.jobID = jobID
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", error
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
