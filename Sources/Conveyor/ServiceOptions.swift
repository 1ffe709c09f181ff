import ArgumentParser
import Foundation
import Ingress
import Inception
import Logging
import ModelRepository
import MQTT
import ResultStore
import Worker

/// Settings shared by the service commands, each also read from the environment.
struct ServiceOptions: ParsableArguments {
    @Option(help: "Keras model (.h5 or .keras) or the InceptionV3 weights file (env CONVEYOR_MODEL).")
    var model: String?

    @Option(help: "Name requests use for the model (env CONVEYOR_MODEL_NAME; default: the model's own name).")
    var modelName: String?

    @Option(help: "Labels file (env CONVEYOR_LABELS; default: found beside the model).")
    var labels: String?

    @Option(help: "HTTP port of the ingress (env CONVEYOR_PORT; default 8000).")
    var port: Int?

    @Option(help: "Port of TF Serving's REST API, /v1/models/… (env CONVEYOR_REST_PORT; default 8501; 0: off).")
    var restPort: Int?

    @Option(help: "Port of TF Serving's gRPC API (env CONVEYOR_GRPC_PORT; default 8500; 0: off).")
    var grpcPort: Int?

    @Option(help: "Seconds a TF Serving request waits for its results before 504 (env CONVEYOR_PREDICT_TIMEOUT; default 30).")
    var predictTimeout: Double?

    @Option(help: "A TF Serving model config file (model_config_list) for workers (env CONVEYOR_MODEL_CONFIG_FILE).")
    var modelConfigFile: String?

    @Option(help: "Folder of numeric version subfolders of one model, served under --model-name (env CONVEYOR_MODEL_BASE_PATH).")
    var modelBasePath: String?

    @Option(help: "Seconds between scans of the model folders for new or deleted versions (env CONVEYOR_POLL_SECONDS; default 1).")
    var fileSystemPollSeconds: Double?

    @Option(help: "Seconds between re-reads of the model config file (env CONVEYOR_CONFIG_POLL_SECONDS; default 0: never).")
    var configPollSeconds: Double?

    @Option(help: "HTTP listen address (env CONVEYOR_HOST; default 0.0.0.0).")
    var host: String?

    @Option(help: "Image for GET /predict/test (env CONVEYOR_SAMPLE_IMAGE).")
    var sampleImage: String?

    @Option(help: "Largest request body in bytes (env CONVEYOR_MAX_BODY_BYTES; default 10485760).")
    var maxBodyBytes: Int?

    @Option(help: "Largest request message a worker accepts, in bytes; larger ones are answered failed (env CONVEYOR_MAX_REQUEST_BYTES; default 12582912). Keep mosquitto's message_size_limit above it.")
    var maxRequestBytes: Int?

    @Option(help: "File of API keys the ingress accepts as `Authorization: Bearer KEY`, one per line (env CONVEYOR_API_KEYS_FILE; or env CONVEYOR_API_KEYS, comma-separated). Without keys the API is open.")
    var apiKeysFile: String?

    @Option(help: "Largest image in pixels (env CONVEYOR_MAX_PIXELS; default 40000000).")
    var maxPixels: Int?

    @Option(help: "Longest ?wait= of GET /job, in seconds (env CONVEYOR_MAX_WAIT_SECONDS; default 60).")
    var maxWaitSeconds: Double?

    @Option(help: "Jobs a worker runs at once (env CONVEYOR_WORKER_CONCURRENCY; default 1).")
    var concurrency: Int?

    @Option(help: "Engine threads per job (env CONVEYOR_THREADS; default cores ÷ concurrency).")
    var threads: Int?

    @Option(help: "SQLite file of the result store (env CONVEYOR_DATABASE; default conveyor-jobs.sqlite).")
    var database: String?

    @Option(help: "Hours finished jobs are kept (env CONVEYOR_RETENTION_HOURS; default 24).")
    var retentionHours: Double?

    @Option(help: "Seconds a job may go without a result before the store publishes its request again (env CONVEYOR_LEASE_SECONDS; default 60).")
    var leaseSeconds: Double?

    @Option(help: "Deliveries after which a job with no result ends failed (env CONVEYOR_MAX_DELIVERIES; default 3).")
    var maxDeliveries: Int?

    @Option(help: "Seconds a job may stay unfinished before it ends expired; 0: never (env CONVEYOR_JOB_TTL_SECONDS; default 3600).")
    var jobTtlSeconds: Double?

    @Option(help: "Seconds the broker keeps the store's MQTT session (and queues its messages) while it is away; 0: a clean session (env CONVEYOR_SESSION_EXPIRY_SECONDS; default 3600).")
    var sessionExpirySeconds: Int?

    @Option(help: "Seconds between a worker's heartbeats listing the jobs it holds; keep it well under the lease (env CONVEYOR_HEARTBEAT_SECONDS; default 5).")
    var heartbeatSeconds: Double?

    @Option(help: "The ingress refuses new jobs (503) while the ledger has this many queued; 0: no limit (env CONVEYOR_MAX_QUEUED; default 10000).")
    var maxQueued: Int?

    @Option(help: "The ingress refuses new jobs (503) when the store's ledger stats are older than this; 0: never (env CONVEYOR_LEDGER_STALE_SECONDS; default 10).")
    var ledgerStaleSeconds: Double?

    @Option(help: "Seconds the ingress waits for the store to commit a request to the ledger before it answers 503 instead of accepting the job (env CONVEYOR_LEDGER_TIMEOUT_SECONDS; default 10).")
    var ledgerTimeoutSeconds: Double?

    @Option(help: "Jobs per second one client (IP address) may submit, else 429; 0: no limit (env CONVEYOR_RATE_LIMIT; default 0).")
    var rateLimit: Double?

    @Option(help: "Jobs a client may submit at once before --rate-limit applies (env CONVEYOR_RATE_BURST; default: the rate, at least 1).")
    var rateBurst: Int?

    @Option(help: "OpenBLAS kernel (see `conveyor bench --help`; env CONVEYOR_BLAS_KERNEL).")
    var blasKernel: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env CONVEYOR_LOG_LEVEL; default info).")
    var logLevel: String?

    var modelPath: String {
        get throws {
            guard let path = model ?? Environment.string("CONVEYOR_MODEL") else {
                throw ValidationError("no model: pass --model PATH or set CONVEYOR_MODEL")
            }
            return path
        }
    }

    /// Whether a model file was given (`--model` or CONVEYOR_MODEL).
    var hasModelFile: Bool { (model ?? Environment.string("CONVEYOR_MODEL")) != nil }

    /// `--model-name` (or CONVEYOR_MODEL_NAME).
    var defaultModelName: String? { modelName ?? Environment.string("CONVEYOR_MODEL_NAME") }

    func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel ?? Environment.string("CONVEYOR_LOG_LEVEL") ?? "info") ?? .info
        return logger
    }

    /// The model repository, if one is configured (it replaces `--model`).
    func repository() throws -> ModelRepositoryConfiguration? {
        let poll = fileSystemPollSeconds ?? Environment.double("CONVEYOR_POLL_SECONDS") ?? 1
        let configPoll = configPollSeconds ?? Environment.double("CONVEYOR_CONFIG_POLL_SECONDS") ?? 0
        if let file = modelConfigFile ?? Environment.string("CONVEYOR_MODEL_CONFIG_FILE") {
            return ModelRepositoryConfiguration(source: .configFile(file), fileSystemPollSeconds: poll, configPollSeconds: configPoll)
        }
        if let base = modelBasePath ?? Environment.string("CONVEYOR_MODEL_BASE_PATH") {
            guard let name = modelName ?? Environment.string("CONVEYOR_MODEL_NAME") else {
                throw ValidationError("--model-base-path needs --model-name")
            }
            guard ModelName.isValid(name) else { throw ValidationError("model name '\(name)' is not 1–64 characters of [A-Za-z0-9_.-]") }
            return ModelRepositoryConfiguration(source: .single(ModelSource(name: name, basePath: base)),
                                                fileSystemPollSeconds: poll)
        }
        return nil
    }

    func workerConfiguration(broker: MQTTConfiguration) throws -> WorkerConfiguration {
        var config: WorkerConfiguration
        if let repository = try repository() {
            config = WorkerConfiguration(broker: broker, repository: repository)
        } else {
            config = WorkerConfiguration(broker: broker, modelPath: try modelPath)
        }
        config.modelName = modelName ?? Environment.string("CONVEYOR_MODEL_NAME")
        config.labelsPath = labels ?? Environment.string("CONVEYOR_LABELS")
        config.concurrency = concurrency ?? Environment.int("CONVEYOR_WORKER_CONCURRENCY") ?? 1
        config.engineThreads = threads ?? Environment.int("CONVEYOR_THREADS")
        config.maxPixels = maxPixels ?? Environment.int("CONVEYOR_MAX_PIXELS") ?? config.maxPixels
        config.maxRequestBytes = maxRequestBytes ?? Environment.int("CONVEYOR_MAX_REQUEST_BYTES") ?? config.maxRequestBytes
        if let seconds = heartbeatSeconds ?? Environment.double("CONVEYOR_HEARTBEAT_SECONDS"), seconds > 0 {
            config.heartbeatInterval = .milliseconds(Int(seconds * 1000))
        }
        if let text = Environment.string("CONVEYOR_FAULT_INJECT") {
            guard let fault = FaultInjection(text) else {
                throw ValidationError("CONVEYOR_FAULT_INJECT must be crash:<job id prefix> or throw:<job id prefix>, not \(text)")
            }
            config.faultInjection = fault
        }
        return config
    }

    /// The API keys from `--api-keys-file`, `CONVEYOR_API_KEYS_FILE` and `CONVEYOR_API_KEYS`.
    func apiKeys() throws -> Set<String> {
        var keys = Set<String>()
        if let file = apiKeysFile ?? Environment.string("CONVEYOR_API_KEYS_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the API keys file \(file)")
            }
            keys.formUnion(APIKeys.parse(file: text))
        }
        if let list = Environment.string("CONVEYOR_API_KEYS") {
            keys.formUnion(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        return keys
    }

    func storeConfiguration(broker: MQTTConfiguration) -> ResultStoreConfiguration {
        var config = ResultStoreConfiguration(broker: broker)
        config.databasePath = database ?? Environment.string("CONVEYOR_DATABASE") ?? config.databasePath
        if let hours = retentionHours ?? Environment.double("CONVEYOR_RETENTION_HOURS") {
            config.retention = .seconds(hours * 3600)
        }
        if let seconds = leaseSeconds ?? Environment.double("CONVEYOR_LEASE_SECONDS") {
            config.lease = .milliseconds(Int(seconds * 1000))
        }
        config.maxDeliveries = maxDeliveries ?? Environment.int("CONVEYOR_MAX_DELIVERIES") ?? config.maxDeliveries
        if let seconds = jobTtlSeconds ?? Environment.double("CONVEYOR_JOB_TTL_SECONDS") {
            config.jobTTL = seconds > 0 ? .milliseconds(Int(seconds * 1000)) : nil
        }
        // A persistent session: what is published while the store is away waits for it.
        let expiry = sessionExpirySeconds ?? Environment.int("CONVEYOR_SESSION_EXPIRY_SECONDS") ?? 3600
        config.broker.cleanStart = expiry <= 0
        config.broker.sessionExpiry = expiry > 0 ? UInt32(min(expiry, Int(UInt32.max))) : nil
        return config
    }

    func ingressConfiguration(broker: MQTTConfiguration, modelName: String) throws -> IngressConfiguration {
        var config = IngressConfiguration(broker: broker)
        config.modelName = modelName
        config.port = port ?? Environment.int("CONVEYOR_PORT") ?? config.port
        config.host = host ?? Environment.string("CONVEYOR_HOST") ?? config.host
        config.sampleImagePath = sampleImage ?? Environment.string("CONVEYOR_SAMPLE_IMAGE")
        config.maxBodyBytes = maxBodyBytes ?? Environment.int("CONVEYOR_MAX_BODY_BYTES") ?? config.maxBodyBytes
        config.maxPixels = maxPixels ?? Environment.int("CONVEYOR_MAX_PIXELS") ?? config.maxPixels
        let rest = restPort ?? Environment.int("CONVEYOR_REST_PORT") ?? 8501
        config.restPort = rest > 0 ? rest : nil
        let grpc = grpcPort ?? Environment.int("CONVEYOR_GRPC_PORT") ?? 8500
        config.grpcPort = grpc > 0 ? grpc : nil
        if let seconds = predictTimeout ?? Environment.double("CONVEYOR_PREDICT_TIMEOUT") {
            config.predictTimeout = .milliseconds(Int(seconds * 1000))
        }
        config.maxWaitSeconds = maxWaitSeconds ?? Environment.double("CONVEYOR_MAX_WAIT_SECONDS") ?? config.maxWaitSeconds
        config.apiKeys = try apiKeys()
        config.maxQueued = maxQueued ?? Environment.int("CONVEYOR_MAX_QUEUED") ?? config.maxQueued
        if let seconds = ledgerTimeoutSeconds ?? Environment.double("CONVEYOR_LEDGER_TIMEOUT_SECONDS"), seconds > 0 {
            config.ledgerTimeout = .milliseconds(Int(seconds * 1000))
        }
        if let seconds = ledgerStaleSeconds ?? Environment.double("CONVEYOR_LEDGER_STALE_SECONDS") {
            config.ledgerStaleAfter = seconds > 0 ? .milliseconds(Int(seconds * 1000)) : nil
        }
        config.ratePerClient = rateLimit ?? Environment.double("CONVEYOR_RATE_LIMIT") ?? config.ratePerClient
        config.rateBurst = rateBurst ?? Environment.int("CONVEYOR_RATE_BURST")
        return config
    }

    /// What the ingress says about the model: read from the model file.
    func modelDescription() throws -> ModelDescription {
        let path = try modelPath
        let model = try Model(contentsOf: path)
        // `Labels.defaultPath` reads CONVEYOR_LABELS itself.
        let names = try Labels.load(labels, forModel: path, classes: model.outputCount) ?? Labels.indices(model.outputCount)
        return Self.describe(model, name: modelName ?? Environment.string("CONVEYOR_MODEL_NAME") ?? model.name, labels: names)
    }

    /// The description of a model already loaded (by a worker in the same process).
    static func describe(_ model: Model, name: String, labels: Labels) -> ModelDescription {
        let s = model.inputShape
        return ModelDescription(name: name, inputShape: [s.height, s.width, s.channels], labels: labels.names)
    }
}
