import Foundation
import MQTT

/// Settings of the HTTP ingress.
public struct IngressConfiguration: Sendable {
    /// Address and port to listen on (default 127.0.0.1:8000: this machine only).
    public var host = "127.0.0.1"
    public var port = 8000
    /// The broker and the ingress's MQTT identity.
    public var broker: MQTTConfiguration
    /// The model requests go to, by the name workers serve it under.
    public var modelName = "inception_v3"
    /// Image served by `GET /predict/test`.
    public var sampleImagePath: String?
    /// Largest request body in bytes (default 10 MB → 413 above it).
    public var maxBodyBytes = 10 * 1024 * 1024
    /// Largest image, in pixels, read from the JPEG header before publishing.
    public var maxPixels = 40_000_000
    /// Longest `?wait=` a client may ask for, in seconds.
    public var maxWaitSeconds = 60.0
    /// How long to wait for the result store to answer a job lookup.
    public var storeTimeout: Duration = .seconds(5)
    /// Port of TF Serving's REST API (`/v1/models/…`); nil: not served.
    public var restPort: Int? = 8501
    /// Port of TF Serving's gRPC API (PredictionService, ModelService); nil: not served.
    public var grpcPort: Int? = 8500
    /// How long a TF Serving request waits for its results before
    /// DEADLINE_EXCEEDED (504).
    public var predictTimeout: Duration = .seconds(30)
    /// Most examples in one TF Serving request.
    public var maxExamples = 64
    /// Most clients connected to `GET /events` at once; over it, 503 with
    /// `Retry-After` (each holds a connection). Default 2,000.
    public var maxEventClients = 2_000

    /// API keys accepted as `Authorization: Bearer <key>` on every route but `/health`;
    /// empty (the default) leaves the API open.
    public var apiKeys: Set<String> = []
    /// New jobs are refused (503) while the ledger counts this many queued
    /// jobs (not yet started by a worker). 0: no limit. Default 10,000.
    public var maxQueued = 10_000
    /// New jobs are refused (503) when the result store's ledger stats are
    /// older than this (the store is down: it could not record the job).
    /// `nil`: never refuse for that. Default 10 s.
    public var ledgerStaleAfter: Duration? = .seconds(10)
    /// How long a front end waits for the result store to commit a request to
    /// the ledger (its ``Jobs/LedgerReceipt``) before refusing the job with
    /// 503 / UNAVAILABLE. A job is accepted only once it is committed.
    public var ledgerTimeout: Duration = .seconds(10)
    /// Jobs per second one client (IP address) may submit; over it, 429.
    /// 0: no limit (the default).
    public var ratePerClient = 0.0
    /// Jobs a client may submit at once before the rate applies (default:
    /// the rate rounded up, at least 1).
    public var rateBurst: Int?

    public init(broker: MQTTConfiguration) { self.broker = broker }
}
