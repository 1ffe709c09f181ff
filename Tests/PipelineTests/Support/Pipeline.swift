import Foundation
import Jobs
import TestBroker

/// A whole Conveyor deployment for a test: a private mosquitto (TestBroker) and the real
/// `conveyor` binary run as separate processes — `conveyor store`, any number of
/// `conveyor worker`s and `conveyor ingress`es — with their logs and the job database in a
/// fresh temporary directory.
///
/// ```swift
/// let pipeline = try Pipeline(name: "restart")
/// defer { pipeline.shutDown() }
/// try await pipeline.start(workers: ["worker-a"], ingresses: [.init(name: "ingress")])
/// let id = try await pipeline.submit(jpeg)
/// let job = try await pipeline.waitForTerminal(id)
/// ```
final class Pipeline: @unchecked Sendable {
    // @unchecked Sendable: the process lists are only changed with `lock` held; tests use
    // one pipeline from one task at a time.

    /// An HTTP ingress process and its port.
    struct Ingress: Sendable {
        var name: String
        var process: ServiceProcess
        var port: Int
        var http: HTTPClient
    }

    /// What an ingress is started with besides the common flags.
    struct IngressSpec: Sendable {
        var name: String
        var extraArguments: [String] = []
    }

    let name: String
    let directory: URL
    let broker: MosquittoBroker
    var databasePath: String { directory.appendingPathComponent("jobs.sqlite").path }
    /// Extra flags for `conveyor store` (e.g. a short `--lease-seconds`).
    var storeArguments: [String] = []
    /// Extra environment variables for every service this pipeline starts.
    var environment: [String: String] = [:]
    /// The store's `--metrics-port` (0: none, so stores of several pipelines never compete for one).
    var storeMetricsPort = 0
    /// The broker port the services connect to (the broker's first listener unless set).
    var servicePort: Int?
    var brokerURL: String { "mqtt://127.0.0.1:\(servicePort ?? broker.port)" }
    /// The model the services load (InceptionV3 unless set), its labels, and an optional
    /// `--model-name`.
    var model = Paths.model
    var labels = Paths.labels
    var modelName: String?
    /// Extra flags for every service (e.g. a short `--max-wait-seconds`).
    var serviceArguments: [String] = []
    /// Extra flags per role ("store", "worker", "ingress"), e.g. broker credentials.
    var roleArguments: [String: [String]] = [:]

    /// How long a service may take to come up (loading InceptionV3 on a busy 2-core machine).
    static let startTimeout: TimeInterval = 240

    private let lock = NSLock()
    private var _store: ServiceProcess?
    private var _workers: [String: ServiceProcess] = [:]
    private var _ingresses: [Ingress] = []

    var store: ServiceProcess? { lock.withLock { _store } }
    var workers: [String: ServiceProcess] { lock.withLock { _workers } }
    var ingresses: [Ingress] { lock.withLock { _ingresses } }
    var allProcesses: [ServiceProcess] {
        lock.withLock { (_store.map { [$0] } ?? []) + _workers.keys.sorted().compactMap { _workers[$0] } + _ingresses.map(\.process) }
    }

    /// The first ingress: where tests send their HTTP requests.
    var ingress: Ingress {
        get throws {
            guard let first = ingresses.first else { throw PipelineError("no ingress started") }
            return first
        }
    }
    var http: HTTPClient { get throws { try ingress.http } }

    /// Checks the prerequisites, makes the directory and starts the broker.
    /// Like `init(name:)`, with a broker of the test's own (started here).
    convenience init(name: String, broker: MosquittoBroker) throws {
        try self.init(name: name, makeBroker: { broker })
    }

    /// `brokerConfig`: extra mosquitto.conf lines (e.g. the shipped `message_size_limit`).
    /// With `brokerPersistence` the broker keeps sessions and queued messages across a
    /// restart (`persistence true` in its temporary directory).
    convenience init(name: String, brokerConfig: [String] = [], brokerPersistence: Bool = false) throws {
        try self.init(name: name, makeBroker: {
            try MosquittoBroker(configLines: ["max_queued_messages 10000"] + brokerConfig, persistence: brokerPersistence)
        })
    }

    private init(name: String, makeBroker: () throws -> MosquittoBroker) throws {
        if let missing = Paths.missingPrerequisite() { throw PipelineError(missing) }
        self.name = name
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-pipeline-\(name)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        broker = try makeBroker()
        try broker.start()
    }

    deinit {
        shutDown()
    }

    /// `--broker` and `--log-level`: what every service is given.
    var commonArguments: [String] {
        ["--broker", brokerURL, "--log-level", "info"]
    }

    /// What a worker serves: `--model`, `--labels`, `--model-name`, then `serviceArguments`.
    var workerModelArguments: [String] {
        ["--model", model, "--labels", labels] + (modelName.map { ["--model-name", $0] } ?? []) + serviceArguments
    }

    /// The ingress's default model: `--model-name`, then `serviceArguments`.
    var ingressModelArguments: [String] {
        (modelName.map { ["--model-name", $0] } ?? []) + serviceArguments
    }

    private func logFile(_ service: String) -> URL { directory.appendingPathComponent("\(service).log") }

    // MARK: - Starting

    /// Starts the store, the workers (by client id) and the ingresses all at once (they load
    /// the model in parallel), then waits until each is ready: the store and the workers by
    /// their "subscribed" log lines, the ingresses by `GET /health`.
    func start(store: Bool = true, workers: [String] = [], workerArguments: [String] = [],
               ingresses: [IngressSpec] = []) async throws {
        var storeProcess: ServiceProcess?
        if store { storeProcess = try launchStore() }
        let workerProcesses = try workers.map { try launchWorker(clientID: $0, extraArguments: workerArguments) }
        var launched: [(IngressSpec, Ingress)] = []
        for spec in ingresses { launched.append((spec, try launchIngress(spec))) }

        if let storeProcess { try storeProcess.waitForLog("result store running", timeout: Self.startTimeout) }
        for worker in workerProcesses { try worker.waitForLog("subscribed to $share/", timeout: Self.startTimeout) }
        for (spec, ingress) in launched { try await waitForIngress(ingress, spec: spec) }
    }

    @discardableResult
    func launchStore(clientID: String = "store") throws -> ServiceProcess {
        let process = ServiceProcess(
            name: "store",
            arguments: ["store"] + commonArguments + ["--database", databasePath, "--client-id", clientID,
                                                      "--metrics-port", String(storeMetricsPort)] + storeArguments
                + roleArguments["store", default: []],
            logFile: logFile("store"),
            environment: ServiceProcess.childEnvironment().merging(environment) { $1 })
        try process.start()
        lock.withLock { _store = process }
        return process
    }

    @discardableResult
    func launchWorker(clientID: String, extraArguments: [String] = [], environment: [String: String] = [:]) throws -> ServiceProcess {
        let process = ServiceProcess(
            name: clientID,
            arguments: ["worker"] + commonArguments + workerModelArguments + ["--client-id", clientID] + extraArguments
                + roleArguments["worker", default: []],
            logFile: logFile(clientID),
            environment: ServiceProcess.childEnvironment().merging(self.environment) { $1 }.merging(environment) { $1 })
        try process.start()
        lock.withLock { _workers[clientID] = process }
        return process
    }

    private func launchIngress(_ spec: IngressSpec) throws -> Ingress {
        let port = try Ports.free()
        let process = ServiceProcess(
            name: spec.name,
            arguments: ["ingress"] + commonArguments + ingressModelArguments + roleArguments["ingress", default: []]
                + ["--host", "127.0.0.1", "--port", String(port), "--client-id", "\(spec.name)-\(port)"]
                + spec.extraArguments,
            logFile: logFile(spec.name),
            environment: ServiceProcess.childEnvironment().merging(environment) { $1 })
        try process.start()
        let ingress = Ingress(name: spec.name, process: process, port: port, http: HTTPClient(port: port))
        lock.withLock {
            _ingresses.removeAll { $0.name == spec.name }
            _ingresses.append(ingress)
        }
        return ingress
    }

    /// Waits until the ingress answers `GET /health`; if it died because another program took
    /// its port in the meantime, starts it again on another port (twice at most).
    private func waitForIngress(_ first: Ingress, spec: IngressSpec) async throws {
        var ingress = first
        var attempts = 1
        let deadline = Date().addingTimeInterval(Self.startTimeout)
        while true {
            if let reply = try? await ingress.http.get("/health", timeout: 5), reply.status == 200 { return }
            if !ingress.process.isRunning {
                let log = ingress.process.log
                if attempts < 3, log.contains("Address already in use") || log.contains("EADDRINUSE") {
                    attempts += 1
                    ingress = try launchIngress(spec)
                    continue
                }
                throw PipelineError("\(spec.name) exited (\(ingress.process.exitDescription ?? "?")) before answering /health\n\(ingress.process.logTail())")
            }
            if Date() >= deadline {
                throw PipelineError("\(spec.name) did not answer GET /health within \(Int(Self.startTimeout)) s\n\(ingress.process.logTail())")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Stops the store with SIGTERM and starts it again on the same database file; returns
    /// how the old one ended.
    func restartStore() throws -> String? {
        guard let old = store else { throw PipelineError("no store running") }
        let ended = old.stop(grace: 15)
        let offset = old.log.count
        let process = try launchStore()
        try process.waitForLog("result store running", after: offset, timeout: Self.startTimeout)
        return ended
    }

    // MARK: - Using it

    /// POSTs the image to `/predict` and returns the job id of the 202 answer.
    func submit(_ image: Data, to ingress: Ingress? = nil) async throws -> String {
        let target = try ingress ?? self.ingress
        let reply = try await target.http.post("/predict", body: TestImages.predictBody(image))
        guard reply.status == 202, let id = reply.object?["job_id"] as? String else {
            throw PipelineError("POST /predict answered \(reply.status): \(reply.text.prefix(300))")
        }
        return id
    }

    /// `GET /job/{id}` (with `?wait=S` if given).
    func job(_ id: String, wait: Double? = nil) async throws -> HTTPReply {
        let query = wait.map { "?wait=\($0 == $0.rounded() ? String(Int($0)) : String($0))" } ?? ""
        return try await http.get("/job/\(id)\(query)", timeout: (wait ?? 0) + 60)
    }

    /// Long-polls `GET /job/{id}?wait=30` until the job is terminal or `timeout` passes;
    /// returns the last view.
    func waitForTerminal(_ id: String, timeout: TimeInterval = 180) async throws -> JobView {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            let reply = try await job(id, wait: max(1, min(30, remaining.rounded(.down))))
            if reply.status == 200 {
                let view = try JobView(id: id, reply: reply)
                if view.isTerminal || Date() >= deadline { return view }
            } else if reply.status != 404 && reply.status != 503 {
                throw PipelineError("GET /job/\(id) answered \(reply.status): \(reply.text.prefix(300))")
            } else if Date() >= deadline {
                throw PipelineError("job \(id) still unknown (\(reply.status)) after \(Int(timeout)) s")
            } else if reply.status == 503 {
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Polls plain `GET /job/{id}` (no long poll: what the store has recorded) every 200 ms
    /// until the job is terminal or `timeout` passes; returns the last view, nil if never known.
    func pollUntilTerminal(_ id: String, timeout: TimeInterval = 180) async throws -> JobView? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: JobView?
        while true {
            let reply = try await job(id)
            if reply.status == 200 {
                last = try JobView(id: id, reply: reply)
                if last?.isTerminal == true { return last }
            } else if reply.status != 404 && reply.status != 503 {
                throw PipelineError("GET /job/\(id) answered \(reply.status): \(reply.text.prefix(300))")
            }
            if Date() >= deadline { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The services that are not running (should be empty).
    var stoppedServices: [String] {
        allProcesses.filter { !$0.isRunning }.map { "\($0.name) (\($0.exitDescription ?? "?"))" }
    }

    /// The tails of every log, for failure messages.
    func diagnostics(lines: Int = 25) -> String {
        (allProcesses.map { $0.logTail(lines) } + ["---- mosquitto:\n" + broker.log.split(separator: "\n").suffix(10).joined(separator: "\n")])
            .joined(separator: "\n")
    }

    // MARK: - Stopping

    /// Stops everything (ingresses, workers, store: SIGTERM then SIGKILL), then the broker.
    func shutDown() {
        let (ingresses, workers, store) = lock.withLock { (_ingresses, Array(_workers.values), _store) }
        for ingress in ingresses { ingress.process.stop(grace: 10) }
        for worker in workers { worker.stop(grace: 10) }
        store?.stop(grace: 10)
        broker.stop()
    }

    /// Deletes the directory with the logs and the database.
    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }
}
