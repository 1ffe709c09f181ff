import ArgumentParser
import Inception
import Foundation
import Ingress
import Logging
import MQTT
import Observability
import ResultStore
import ServiceLifecycle
import Worker

/// `conveyor up`: the whole pipeline on this machine, in one process plus a
/// private mosquitto: broker, result store, worker(s) and the ingress.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the whole pipeline here: a private mosquitto on loopback (unless --broker), the result store, workers and the ingress on :8000."
    )
    @OptionGroup(title: "Broker") var broker: BrokerOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Worker") var worker: WorkerOptions
    @OptionGroup(title: "Store") var store: StoreOptions
    @OptionGroup(title: "Ingress") var ingress: IngressOptions
    @OptionGroup(title: "Limits") var images: ImageOptions
    @OptionGroup(title: "Tracing") var tracing: TracingOptions
    @OptionGroup(title: "Logging") var log: LogOptions

    @Option(help: "Workers to start (env CONVEYOR_WORKERS; default 1).")
    var workers: Int?

    @Option(help: "Port of the private mosquitto (env CONVEYOR_MQTT_PORT; default 1883).")
    var mqttPort: Int?

    @Option(help: "Folder for the private broker's files and the job database (env CONVEYOR_DATA_DIR; default ./conveyor-data).")
    var dataDir: String?

    func validate() throws {
        _ = try workerCount()
        _ = try Setting.port(mqttPort, "mqtt-port", env: "CONVEYOR_MQTT_PORT")
    }

    private func workerCount() throws -> Int {
        try Setting.int(workers, "workers", env: "CONVEYOR_WORKERS", in: 1...256) ?? 1
    }

    func run() async throws {
        // One process, one registry: the ingress's /metrics shows every service's metrics.
        MetricsRegistry.bootstrap()
        let logger = try log.logger("conveyor")
        let dir = dataDir ?? Environment.string("CONVEYOR_DATA_DIR") ?? "conveyor-data"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var brokerURL = broker.broker ?? Environment.string("CONVEYOR_BROKER")
        var privateBroker: BrokerProcess?
        if brokerURL == nil {
            let port = try Setting.port(mqttPort, "mqtt-port", env: "CONVEYOR_MQTT_PORT") ?? 1883
            let process = try BrokerProcess(port: port, directory: dir, logger: logger)
            try process.start()
            privateBroker = process
            brokerURL = "mqtt://127.0.0.1:\(port)"
        }
        defer { privateBroker?.stop() }

        var storeOptions = try store.configuration(broker: try broker.configuration(role: "store", url: brokerURL))
        if store.databasePath == nil {
            storeOptions.databasePath = (dir as NSString).appendingPathComponent("jobs.sqlite")
        }
        let storeService = try ResultStoreService(configuration: storeOptions, logger: try log.logger("conveyor.store"))
        var services: [any Service] = [storeService]
        var description: ModelDescription?
        var defaultModel: String?
        for i in 0..<(try workerCount()) {
            var config = try worker.configuration(broker: try broker.configuration(role: "worker\(i)", url: brokerURL),
                                                  model: model, images: images)
            config.broker.clientID += "-\(i)"
            let service = try WorkerService(configuration: config, logger: try log.logger("conveyor.worker"))
            defaultModel = defaultModel ?? service.modelName
            if description == nil, let servable = service.primaryServable {
                // The worker in this process has the model loaded already: describe it from there.
                let s = servable.model.inputShape
                description = ModelDescription(name: servable.name, version: Int(servable.version),
                                               inputShape: [s.height, s.width, s.channels], labels: servable.labels.names)
            }
            services.append(service)
        }
        logger.info("\(BLASKernel.describe(running: BLASInfo.kernel))")
        let ingressConfig = try ingress.configuration(broker: try broker.configuration(role: "ingress", url: brokerURL),
                                                      modelName: description?.name ?? defaultModel ?? "inception_v3", images: images)
        services.append(IngressService(configuration: ingressConfig, model: description, logger: try log.logger("conveyor.ingress")))
        logger.info("conveyor up: broker \(MQTTConfiguration.redacting(brokerURL!)), HTTP on \(ingressConfig.host):\(ingressConfig.port), jobs in \(storeOptions.databasePath); Ctrl-C stops everything")
        try await tracing.run(services, as: "conveyor", logger: logger)
    }
}
