import ArgumentParser
import Inception
import Foundation
import Ingress
import Logging
import Observability
import ResultStore
import ServiceLifecycle
import Worker

/// `conveyor worker`: one stateless inference worker.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run an inference worker.")
    @OptionGroup(title: "Broker") var broker: BrokerOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Worker") var options: WorkerOptions
    @OptionGroup(title: "Limits") var images: ImageOptions
    @OptionGroup(title: "Metrics and probes") var probes: ProbeOptions
    @OptionGroup(title: "Tracing") var tracing: TracingOptions
    @OptionGroup(title: "Logging") var log: LogOptions

    func run() async throws {
        MetricsRegistry.bootstrap()
        let logger = try log.logger("conveyor.worker")
        let configuration = try options.configuration(broker: try broker.configuration(role: "worker"), model: model, images: images)
        let worker = try WorkerService(configuration: configuration, logger: logger)
        logger.info("\(BLASKernel.describe(running: BLASInfo.kernel))")
        var services: [any Service] = [worker]
        if let probe = try probes.server(defaultPort: 0, readiness: worker.readiness,
                                         logger: logger) {
            services.append(probe)
        }
        try await tracing.run(services, as: "conveyor-worker", logger: logger)
    }
}

/// `conveyor store`: the result store.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Run the result store.")
    @OptionGroup(title: "Broker") var broker: BrokerOptions
    @OptionGroup(title: "Store") var options: StoreOptions
    @OptionGroup(title: "Metrics and probes") var probes: ProbeOptions
    @OptionGroup(title: "Tracing") var tracing: TracingOptions
    @OptionGroup(title: "Logging") var log: LogOptions

    /// The store's default metrics port (one store per host).
    static let defaultMetricsPort = 9102

    func run() async throws {
        MetricsRegistry.bootstrap()
        let logger = try log.logger("conveyor.store")
        let store = try ResultStoreService(configuration: options.configuration(broker: try broker.configuration(role: "store")),
                                           logger: logger)
        var services: [any Service] = [store]
        if let probe = try probes.server(defaultPort: Self.defaultMetricsPort,
                                         readiness: store.readiness,
                                         logger: logger) {
            services.append(probe)
        }
        try await tracing.run(services, as: "conveyor-store", logger: logger)
    }
}

/// `conveyor ingress`: the HTTP job API and TF Serving's REST and gRPC APIs.
/// It never loads a model: what the models are comes from the workers'
/// announcements.
struct IngressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingress", abstract: "Run the HTTP ingress.")
    @OptionGroup(title: "Broker") var broker: BrokerOptions
    @OptionGroup(title: "Ingress") var options: IngressOptions
    @OptionGroup(title: "Limits") var images: ImageOptions
    @OptionGroup(title: "Tracing") var tracing: TracingOptions
    @OptionGroup(title: "Logging") var log: LogOptions

    @Option(help: "The model POST /predict and GET /predict/test go to, and /metadata and /label describe (env CONVEYOR_MODEL_NAME; default inception_v3).")
    var modelName: String?

    func run() async throws {
        MetricsRegistry.bootstrap()
        let logger = try log.logger("conveyor.ingress")
        let name = Setting.string(modelName, env: "CONVEYOR_MODEL_NAME") ?? "inception_v3"
        let configuration = try options.configuration(broker: try broker.configuration(role: "ingress"), modelName: name,
                                                      images: images)
        let ingress = IngressService(configuration: configuration, model: nil, logger: logger)
        try await tracing.run([ingress], as: "conveyor-ingress", logger: logger)
    }
}
