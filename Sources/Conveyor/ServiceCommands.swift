import ArgumentParser
import Inception
import Foundation
import Ingress
import Logging
import ResultStore
import ServiceLifecycle
import Worker

/// `conveyor worker`: one stateless inference worker.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run an inference worker.")
    @OptionGroup var broker: BrokerOptions
    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let logger = options.logger("conveyor.worker")
        let worker = try WorkerService(configuration: try options.workerConfiguration(broker: try broker.configuration(role: "worker")), logger: logger)
        logger.info("\(BLASKernel.describe(running: BLASInfo.kernel))")
        try await ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// `conveyor store`: the result store.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Run the result store.")
    @OptionGroup var broker: BrokerOptions
    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let logger = options.logger("conveyor.store")
        let store = try ResultStoreService(configuration: options.storeConfiguration(broker: try broker.configuration(role: "store")), logger: logger)
        try await ServiceGroup(services: [store], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

/// `conveyor ingress`: the HTTP API.
struct IngressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingress", abstract: "Run the HTTP ingress.")
    @OptionGroup var broker: BrokerOptions
    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let logger = options.logger("conveyor.ingress")
        // With the model file, /metadata and /label describe it; with only a
        // name, they come from the workers' announcements.
        let model = options.hasModelFile ? try options.modelDescription() : nil
        guard let name = model?.name ?? options.defaultModelName else {
            throw ValidationError("pass --model PATH or --model-name NAME (the model POST /predict goes to)")
        }
        let ingress = IngressService(configuration: try options.ingressConfiguration(broker: try broker.configuration(role: "ingress"), modelName: name),
                                     model: model, logger: logger)
        try await ServiceGroup(services: [ingress], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
