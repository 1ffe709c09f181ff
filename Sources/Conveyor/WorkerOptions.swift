import ArgumentParser
import MQTT
import Worker

/// How a worker runs its models.
struct WorkerOptions: ParsableArguments {
    @Option(help: "Jobs a worker runs at once (env CONVEYOR_WORKER_CONCURRENCY; default 1).")
    var concurrency: Int?

    @Option(help: "Engine threads per job (env CONVEYOR_THREADS; default cores ÷ concurrency).")
    var threads: Int?

    @Option(help: "Most requests for one model version run as one engine batch; 1 runs each alone (env CONVEYOR_MAX_BATCH_SIZE; default 8).")
    var maxBatchSize: Int?

    @Option(help: "Milliseconds an inference thread waits for a batch to fill; 0 runs what is there (env CONVEYOR_BATCH_TIMEOUT_MS; default 2).")
    var batchTimeoutMs: Double?

    @Option(help: "Jobs a worker holds beyond the concurrency × max-batch-size it runs at once; later arrivals are handed back to the ledger for other workers (env CONVEYOR_PREFETCH; default: no bound).")
    var prefetch: Int?

    @Option(help: "Largest request message a worker accepts, in bytes; larger ones are answered failed (env CONVEYOR_MAX_REQUEST_BYTES; default 12582912). Keep mosquitto's message_size_limit above it.")
    var maxRequestBytes: Int?

    @Option(help: "Seconds between a worker's heartbeats listing the jobs it holds; keep it well under the lease (env CONVEYOR_HEARTBEAT_SECONDS; default 5).")
    var heartbeatSeconds: Double?

    @Option(help: "OpenBLAS kernel: auto (from the CPU flags) or a name such as SkylakeX or Haswell (env CONVEYOR_BLAS_KERNEL).")
    var blasKernel: String?

    /// Every value checked before the command runs.
    func validate() throws {
        var config = WorkerConfiguration(broker: .validationPlaceholder, modelPath: "")
        try apply(to: &config, images: nil)
    }

    func configuration(broker: MQTTConfiguration, model: ModelOptions, images: ImageOptions) throws -> WorkerConfiguration {
        var config: WorkerConfiguration
        if let repository = try model.repository() {
            config = WorkerConfiguration(broker: broker, repository: repository)
        } else {
            config = WorkerConfiguration(broker: broker, modelPath: try model.modelPath)
        }
        config.modelName = model.name
        config.labelsPath = Setting.string(model.labels, env: "CONVEYOR_LABELS")
        try apply(to: &config, images: images)
        return config
    }

    /// This group's settings, onto a configuration.
    private func apply(to config: inout WorkerConfiguration, images: ImageOptions?) throws {
        config.concurrency = try Setting.int(concurrency, "concurrency", env: "CONVEYOR_WORKER_CONCURRENCY", in: 1...1024) ?? 1
        config.engineThreads = try Setting.int(threads, "threads", env: "CONVEYOR_THREADS", in: 1...1024)
        config.maxBatchSize = try Setting.int(maxBatchSize, "max-batch-size", env: "CONVEYOR_MAX_BATCH_SIZE", in: 1...256)
            ?? config.maxBatchSize
        if let ms = try Setting.double(batchTimeoutMs, "batch-timeout-ms", env: "CONVEYOR_BATCH_TIMEOUT_MS") {
            guard ms <= 60_000 else { throw ValidationError("--batch-timeout-ms \(ms): at most 60000") }
            config.batchTimeout = .microseconds(Int((ms * 1000).rounded()))
        }
        config.prefetch = try Setting.int(prefetch, "prefetch", env: "CONVEYOR_PREFETCH", in: 0...1_000_000)
        config.maxPixels = try images?.maxPixels(default: config.maxPixels) ?? config.maxPixels
        config.maxRequestBytes = try Setting.int(maxRequestBytes, "max-request-bytes", env: "CONVEYOR_MAX_REQUEST_BYTES",
                                                 in: 1...Int.max) ?? config.maxRequestBytes
        if let seconds = try Setting.double(heartbeatSeconds, "heartbeat-seconds", env: "CONVEYOR_HEARTBEAT_SECONDS"), seconds > 0 {
            config.heartbeatInterval = .milliseconds(Int(seconds * 1000))
        }
        if let text = Environment.string("CONVEYOR_FAULT_INJECT") {
            guard let fault = FaultInjection(text) else {
                throw ValidationError("CONVEYOR_FAULT_INJECT=\(text): must be crash:<job id prefix> or throw:<job id prefix>")
            }
            config.faultInjection = fault
        }
    }
}
