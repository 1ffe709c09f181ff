import Foundation
import ModelRepository
import MQTT

/// Settings of one worker process.
public struct WorkerConfiguration: Sendable {
    /// The broker and this worker's MQTT identity.
    public var broker: MQTTConfiguration
    /// A single Keras model file to serve as version 1 (`--model`), when no
    /// `repository` is given.
    public var modelPath: String
    /// The name requests use for the single model (default: the model's own
    /// name, e.g. "inception_v3").
    public var modelName: String?
    /// A TF Serving style model repository (`--model_base_path` or
    /// `--model_config_file`), polled for new and deleted versions. Takes the
    /// place of `modelPath`.
    public var repository: ModelRepositoryConfiguration?
    /// Labels file for every model (default: each model's own, found beside
    /// it, see `Labels.defaultPath`).
    public var labelsPath: String?
    /// Inference threads, i.e. jobs run at once (default 1).
    public var concurrency: Int = 1
    /// Threads each inference uses inside the engine (default: cores ÷ concurrency).
    public var engineThreads: Int?
    /// The most requests for one model version an inference thread runs as one
    /// engine batch (default 8; 1 runs each alone).
    public var maxBatchSize: Int = 8
    /// How long an inference thread with fewer than `maxBatchSize` requests for
    /// a version waits for more before running them (default 2 ms; zero runs
    /// what is there).
    public var batchTimeout: Duration = .milliseconds(2)
    /// The most jobs held beyond those the worker runs at once
    /// (`concurrency` × `maxBatchSize`); a job arriving beyond it is handed back
    /// to the ledger, which publishes it again for the other workers. `nil`
    /// (the default): no bound, the whole backlog waits in this worker.
    public var prefetch: Int?
    /// Where the jobs of running batches are written down (see
    /// `BatchJournal`), shared by the workers of one machine; `nil`: nowhere.
    /// Default: `conveyor-batches` in the temporary directory.
    public var batchJournalDirectory: String? = FileManager.default.temporaryDirectory
        .appendingPathComponent("conveyor-batches", isDirectory: true).path
    /// Largest image accepted, in pixels.
    public var maxPixels: Int = 40_000_000
    /// Largest request message accepted, in bytes (default 12 MiB). Larger ones are answered
    /// `failed` with the reason. Keep the broker's `message_size_limit` above it, so the
    /// broker passes oversized requests on to be answered instead of dropping them.
    public var maxRequestBytes: Int = 12 * 1024 * 1024
    /// The shared-subscription group (workers in one group split the load).
    public var group: String = "workers"
    /// How often the worker publishes the jobs it holds (its heartbeat, which
    /// keeps their leases in the ledger). Keep it well under the store's lease.
    public var heartbeatInterval: Duration = .seconds(5)
    /// Deliberate failures for fault tests (env `CONVEYOR_FAULT_INJECT`).
    public var faultInjection: FaultInjection?

    public init(broker: MQTTConfiguration, modelPath: String) {
        self.broker = broker
        self.modelPath = modelPath
    }

    public init(broker: MQTTConfiguration, repository: ModelRepositoryConfiguration) {
        self.broker = broker
        self.modelPath = ""
        self.repository = repository
    }
}
