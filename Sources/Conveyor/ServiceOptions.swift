import ArgumentParser
import Foundation
import Ingress
import Inception
import Logging
import MQTT
import ResultStore
import Worker

/// Settings shared by the service commands, each also read from the environment.
struct ServiceOptions: ParsableArguments {
    @Option(help: "Keras HDF5 model or the InceptionV3 weights file (env CONVEYOR_MODEL).")
    var model: String?

    @Option(help: "Name requests use for the model (env CONVEYOR_MODEL_NAME; default: the model's own name).")
    var modelName: String?

    @Option(help: "Labels file (env CONVEYOR_LABELS; default: found beside the model).")
    var labels: String?

    @Option(help: "HTTP port of the ingress (env CONVEYOR_PORT; default 8000).")
    var port: Int?

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

    func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel ?? Environment.string("CONVEYOR_LOG_LEVEL") ?? "info") ?? .info
        return logger
    }

    func workerConfiguration(broker: MQTTConfiguration) throws -> WorkerConfiguration {
        var config = WorkerConfiguration(broker: broker, modelPath: try modelPath)
        config.modelName = modelName ?? Environment.string("CONVEYOR_MODEL_NAME")
        config.labelsPath = labels ?? Environment.string("CONVEYOR_LABELS")
        config.concurrency = concurrency ?? Environment.int("CONVEYOR_WORKER_CONCURRENCY") ?? 1
        config.engineThreads = threads ?? Environment.int("CONVEYOR_THREADS")
        config.maxPixels = maxPixels ?? Environment.int("CONVEYOR_MAX_PIXELS") ?? config.maxPixels
        config.maxRequestBytes = maxRequestBytes ?? Environment.int("CONVEYOR_MAX_REQUEST_BYTES") ?? config.maxRequestBytes
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
        config.maxWaitSeconds = maxWaitSeconds ?? Environment.double("CONVEYOR_MAX_WAIT_SECONDS") ?? config.maxWaitSeconds
        config.apiKeys = try apiKeys()
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
