import ArgumentParser
import Inception
import Foundation
import Ingress
import Logging
import MQTT
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
    @OptionGroup var broker: BrokerOptions
    @OptionGroup var options: ServiceOptions

    @Option(help: "Workers to start (env CONVEYOR_WORKERS; default 1).")
    var workers: Int?

    @Option(help: "Port of the private mosquitto (env CONVEYOR_MQTT_PORT; default 1883).")
    var mqttPort: Int?

    @Option(help: "Folder for the private broker's files and the job database (env CONVEYOR_DATA_DIR; default ./conveyor-data).")
    var dataDir: String?

    func run() async throws {
        let logger = options.logger("conveyor")
        let dir = dataDir ?? Environment.string("CONVEYOR_DATA_DIR") ?? "conveyor-data"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var brokerURL = broker.broker ?? Environment.string("CONVEYOR_BROKER")
        var privateBroker: BrokerProcess?
        if brokerURL == nil {
            let port = mqttPort ?? Environment.int("CONVEYOR_MQTT_PORT") ?? 1883
            let process = try BrokerProcess(port: port, directory: dir, logger: logger)
            try process.start()
            privateBroker = process
            brokerURL = "mqtt://127.0.0.1:\(port)"
        }
        defer { privateBroker?.stop() }

        var storeOptions = options.storeConfiguration(broker: try broker.configuration(role: "store", url: brokerURL))
        if options.database == nil, Environment.string("CONVEYOR_DATABASE") == nil {
            storeOptions.databasePath = (dir as NSString).appendingPathComponent("jobs.sqlite")
        }
        let store = try ResultStoreService(configuration: storeOptions, logger: options.logger("conveyor.store"))
        var services: [any Service] = [store]
        var description: ModelDescription?
        var defaultModel: String?
        for i in 0..<max(1, workers ?? Environment.int("CONVEYOR_WORKERS") ?? 1) {
            var config = try options.workerConfiguration(broker: try broker.configuration(role: "worker\(i)", url: brokerURL))
            config.broker.clientID += "-\(i)"
            let worker = try WorkerService(configuration: config, logger: options.logger("conveyor.worker"))
            defaultModel = defaultModel ?? worker.modelName
            if description == nil, let servable = worker.primaryServable {
                description = ServiceOptions.describe(servable.model, name: servable.name, labels: servable.labels)
            }
            services.append(worker)
        }
        logger.info("\(BLASKernel.describe(running: BLASInfo.kernel))")
        let ingressConfig = try options.ingressConfiguration(broker: try broker.configuration(role: "ingress", url: brokerURL),
                                                         modelName: description?.name ?? defaultModel ?? "inception_v3")
        services.append(IngressService(configuration: ingressConfig, model: description, logger: options.logger("conveyor.ingress")))
        logger.info("conveyor up: broker \(MQTTConfiguration.redacting(brokerURL!)), HTTP on \(ingressConfig.host):\(ingressConfig.port), jobs in \(storeOptions.databasePath); Ctrl-C stops everything")
        try await ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
