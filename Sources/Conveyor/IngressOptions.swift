import ArgumentParser
import Foundation
import Ingress
import MQTT

/// The ingress's ports, limits and keys.
struct IngressOptions: ParsableArguments {
    @Option(help: "Listen address of the HTTP, REST and gRPC ports (env CONVEYOR_HOST; default 127.0.0.1: this machine only; 0.0.0.0 exposes them, and then wants --api-keys-file).")
    var host: String?

    @Option(help: "HTTP port of the job API (env CONVEYOR_PORT; default 8000).")
    var port: Int?

    @Option(help: "Port of TF Serving's REST API, /v1/models/… (env CONVEYOR_REST_PORT; default 8501; 0: off).")
    var restPort: Int?

    @Option(help: "Port of TF Serving's gRPC API (env CONVEYOR_GRPC_PORT; default 8500; 0: off).")
    var grpcPort: Int?

    @Option(help: "Seconds a TF Serving request waits for its results before 504 (env CONVEYOR_PREDICT_TIMEOUT; default 30).")
    var predictTimeout: Double?

    @Option(help: "Image for GET /predict/test (env CONVEYOR_SAMPLE_IMAGE).")
    var sampleImage: String?

    @Option(help: "Largest request body in bytes (env CONVEYOR_MAX_BODY_BYTES; default 10485760).")
    var maxBodyBytes: Int?

    @Option(help: "File of API keys the ingress accepts as `Authorization: Bearer KEY`, one per line (env CONVEYOR_API_KEYS_FILE; or env CONVEYOR_API_KEYS, comma-separated). Without keys the API is open.")
    var apiKeysFile: String?

    @Option(help: "Longest ?wait= of GET /job, in seconds (env CONVEYOR_MAX_WAIT_SECONDS; default 60).")
    var maxWaitSeconds: Double?

    @Option(help: "Most clients on GET /events (the web console's live feed) at once; over it, 503 (env CONVEYOR_MAX_EVENT_CLIENTS; default 2000).")
    var maxEventClients: Int?

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

    /// Every value checked before the command runs.
    func validate() throws {
        _ = try configuration(broker: .validationPlaceholder, modelName: "", images: nil)
    }

    /// The API keys from `--api-keys-file`, `CONVEYOR_API_KEYS_FILE` and `CONVEYOR_API_KEYS`.
    func apiKeys() throws -> Set<String> {
        var keys = Set<String>()
        if let file = Setting.string(apiKeysFile, env: "CONVEYOR_API_KEYS_FILE") {
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

    /// The ingress's configuration; `images` (nil: the default limit) is validated on its own.
    func configuration(broker: MQTTConfiguration, modelName: String, images: ImageOptions?) throws -> IngressConfiguration {
        var config = IngressConfiguration(broker: broker)
        config.modelName = modelName
        config.port = try Setting.port(port, "port", env: "CONVEYOR_PORT") ?? config.port
        config.host = Setting.string(host, env: "CONVEYOR_HOST") ?? config.host
        config.sampleImagePath = Setting.string(sampleImage, env: "CONVEYOR_SAMPLE_IMAGE")
        config.maxBodyBytes = try Setting.int(maxBodyBytes, "max-body-bytes", env: "CONVEYOR_MAX_BODY_BYTES", in: 1...Int.max)
            ?? config.maxBodyBytes
        config.maxPixels = try images?.maxPixels(default: config.maxPixels) ?? config.maxPixels
        let rest = try Setting.port(restPort, "rest-port", env: "CONVEYOR_REST_PORT", allowZero: true) ?? 8501
        config.restPort = rest > 0 ? rest : nil
        let grpc = try Setting.port(grpcPort, "grpc-port", env: "CONVEYOR_GRPC_PORT", allowZero: true) ?? 8500
        config.grpcPort = grpc > 0 ? grpc : nil
        if let seconds = try Setting.double(predictTimeout, "predict-timeout", env: "CONVEYOR_PREDICT_TIMEOUT", atLeast: 0.001) {
            config.predictTimeout = .milliseconds(Int(seconds * 1000))
        }
        config.maxWaitSeconds = try Setting.double(maxWaitSeconds, "max-wait-seconds", env: "CONVEYOR_MAX_WAIT_SECONDS")
            ?? config.maxWaitSeconds
        config.maxEventClients = try Setting.int(maxEventClients, "max-event-clients", env: "CONVEYOR_MAX_EVENT_CLIENTS",
                                                 in: 0...Int.max) ?? config.maxEventClients
        config.apiKeys = try apiKeys()
        config.maxQueued = try Setting.int(maxQueued, "max-queued", env: "CONVEYOR_MAX_QUEUED", in: 0...Int.max) ?? config.maxQueued
        if let seconds = try Setting.double(ledgerTimeoutSeconds, "ledger-timeout-seconds", env: "CONVEYOR_LEDGER_TIMEOUT_SECONDS",
                                            atLeast: 0.001) {
            config.ledgerTimeout = .milliseconds(Int(seconds * 1000))
        }
        if let seconds = try Setting.double(ledgerStaleSeconds, "ledger-stale-seconds", env: "CONVEYOR_LEDGER_STALE_SECONDS") {
            config.ledgerStaleAfter = seconds > 0 ? .milliseconds(Int(seconds * 1000)) : nil
        }
        config.ratePerClient = try Setting.double(rateLimit, "rate-limit", env: "CONVEYOR_RATE_LIMIT") ?? config.ratePerClient
        config.rateBurst = try Setting.int(rateBurst, "rate-burst", env: "CONVEYOR_RATE_BURST", in: 1...Int.max)
        return config
    }
}
