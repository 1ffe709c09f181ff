import Foundation
import Hummingbird
import Inception
import Jobs
import Logging
import MQTT
import Observability
import StoreClient
import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle
import TFServing

/// The HTTP front door: accepts images, publishes them as jobs on the model's
/// request topic and answers job polling by asking the result store over MQTT
/// (request/response on `Topics.storeQuery`).
public final class IngressService: Service {
    public let configuration: IngressConfiguration
    /// The default model's description when the ingress was given the model
    /// file; otherwise `/metadata` and `/label` come from the workers'
    /// announcements.
    public let model: ModelDescription?
    private let client: MQTTClient
    private let store: JobQueryClient
    private let watcher = ResultWatcher()
    private let logger: Logger
    private let decoder: JPEGDecoder
    /// What the workers serve, from their announcements.
    public let catalog = ModelCatalog()
    /// TF Serving's REST and gRPC APIs, run through the pipeline.
    public let tfServing: TFServingFrontend
    private let gauge: LedgerGauge
    private let submitter: JobSubmitter
    /// The console's live feed (`GET /events`).
    public let feed: ConsoleFeed

    public init(configuration: IngressConfiguration, model: ModelDescription?, logger: Logger = Logger(label: "conveyor.ingress")) {
        self.configuration = configuration
        self.model = model
        self.logger = logger
        client = MQTTClient(configuration.broker, logger: logger, service: "ingress")
        store = JobQueryClient(client: client, replyTopic: Topics.storeReply(client: configuration.broker.clientID))
        decoder = JPEGDecoder(maxPixels: configuration.maxPixels)
        gauge = LedgerGauge(maxQueued: configuration.maxQueued, staleAfter: configuration.ledgerStaleAfter)
        let limiter = configuration.ratePerClient > 0
            ? RateLimiter(rate: configuration.ratePerClient,
                          burst: configuration.rateBurst ?? Int(configuration.ratePerClient.rounded(.up)))
            : nil
        feed = ConsoleFeed(catalog: catalog, maxClients: configuration.maxEventClients)
        submitter = JobSubmitter(client: client, ledger: store, gauge: gauge, limiter: limiter,
                                 timeout: configuration.ledgerTimeout, feed: feed, logger: logger)
        tfServing = TFServingFrontend(catalog: catalog, submitter: submitter, watcher: watcher,
                                      timeout: configuration.predictTimeout, maxExamples: configuration.maxExamples,
                                      logger: logger)
    }

    public func run() async throws {
        if !configuration.apiKeys.isEmpty {
            logger.info("API keys required (\(configuration.apiKeys.count) configured; /health stays open)")
        }
        try await client.connect()
        try await store.start()
        let results = try await client.subscribe(Topics.allResults, qos: 1)
        let announcements = try await client.subscribe(Topics.allServables, qos: 1)
        let stats = try await client.subscribe(Topics.ledgerStats, qos: 0)
        // For the console's feed: workers taking jobs, and what each worker holds.
        let events = try await client.subscribe(Topics.allEvents, qos: 0)
        let heartbeats = try await client.subscribe(Topics.allWorkerHeartbeats, qos: 0)
        // The job API's port also answers TF Serving's /v1/... paths, so one port
        // (and one OpenAPI document) covers every route.
        let tfServingREST = TFServingREST(frontend: tfServing, maxBodyBytes: configuration.maxBodyBytes,
                                          apiKeys: configuration.apiKeys, logger: logger)
        let jobAPI = makeRouter().buildResponder()
        let app = Application(
            responder: CallbackResponder<IngressRequestContext> { request, context in
                if request.uri.path.lowercased().hasPrefix("/v1/") {
                    return await tfServingREST.respond(to: request, client: context.clientAddress)
                }
                return try await jobAPI.respond(to: request, context: context)
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "conveyor"),
            logger: logger
        )
        let rest = configuration.restPort.map { port in
            Application(
                responder: tfServingREST.responder,
                configuration: .init(address: .hostname(configuration.host, port: port), serverName: "conveyor"),
                logger: logger
            )
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    for await message in results {
                        guard let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload)) else { continue }
                        self.watcher.deliver(result)
                        self.feed.jobChanged(result)
                    }
                }
                group.addTask {
                    for await message in events {
                        // Running events; a worker's hand-back (queued) is not a change the console shows.
                        guard let event = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload)),
                              event.status == .running else { continue }
                        self.feed.jobChanged(event)
                    }
                }
                group.addTask {
                    for await message in heartbeats {
                        guard let beat = try? JSONCoding.decoder.decode(WorkerHeartbeat.self, from: Data(message.payload)) else { continue }
                        self.feed.heartbeat(beat)
                    }
                }
                group.addTask { try? await cancelWhenGracefulShutdown { await self.feed.run() } }
                group.addTask { await self.follow(announcements) }
                group.addTask {
                    for await message in stats {
                        guard let value = try? JSONCoding.decoder.decode(LedgerStats.self, from: Data(message.payload)) else { continue }
                        self.gauge.update(value, retained: message.retain)
                        self.feed.ledgerStats(value)
                    }
                }
                group.addTask {
                    // Graceful shutdown: each server stops accepting and answers the requests in hand.
                    try await withThrowingDiscardingTaskGroup { servers in
                        servers.addTask { try await app.run() }
                        if let port = self.configuration.grpcPort {
                            servers.addTask { await self.serveGRPC(port: port) }
                        }
                        if let rest {
                            servers.addTask {
                                // The job API stays up even if TF Serving's port is taken.
                                do { try await rest.run() } catch {
                                    self.logger.error("TF Serving REST API not running on port \(self.configuration.restPort ?? 0): \(error)")
                                }
                            }
                        }
                    }
                    await results.cancel()
                    await announcements.cancel()
                    await stats.cancel()
                    await events.cancel()
                    await heartbeats.cancel()
                }
            }
        } onGracefulShutdown: {
            // Long polls answer now with the job's current state instead of holding the stop.
            self.watcher.wakeAll()
            // Event streams end, so their connections do not hold the stop.
            self.feed.finishAll()
        }
        await client.disconnect()
    }

    /// TF Serving's gRPC services until graceful shutdown. Like the REST API,
    /// a port that cannot be bound is logged and the job API stays up.
    private func serveGRPC(port: Int) async {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = configuration.maxBodyBytes
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: configuration.host, port: port),
                                      transportSecurity: .plaintext, config: config),
            services: [PredictionServiceHandler(frontend: tfServing), ModelServiceHandler(frontend: tfServing),
                       HealthServiceHandler(readiness: readiness)],
            interceptors: configuration.apiKeys.isEmpty ? [] : [APIKeyInterceptor(keys: configuration.apiKeys)]
        )
        do {
            try await withGracefulShutdownHandler {
                try await server.serve()
            } onGracefulShutdown: {
                server.beginGracefulShutdown()
            }
        } catch {
            logger.error("TF Serving gRPC API not running on port \(port): \(error)")
        }
    }

    /// The newest available version of the default model, from the catalog.
    private func announcedDefaultModel() throws -> ModelCatalog.Resolved {
        do {
            return try catalog.resolve(model: configuration.modelName, .latest)
        } catch {
            var unavailable = APIError(.serviceUnavailable, "no worker serves model \(configuration.modelName) yet")
            unavailable.headers[.retryAfter] = "1"
            throw unavailable
        }
    }

    /// Keeps the catalog in step with the workers' retained announcements (an
    /// empty message: the worker stopped).
    private func follow(_ announcements: MQTTSubscription) async {
        for await message in announcements {
            guard let worker = message.topic.split(separator: "/").last.map(String.init) else { continue }
            if message.payload.isEmpty {
                catalog.remove(worker: worker)
            } else if let announcement = try? JSONCoding.decoder.decode(ServableAnnouncement.self, from: Data(message.payload)) {
                catalog.update(announcement)
            } else {
                logger.warning("ignored an unreadable announcement on \(message.topic)")
            }
        }
    }

    /// The job API's routes, as `makeRouter` registers them.
    static let routes: [(method: HTTPRequest.Method, path: String)] = [
        (.get, "/health"), (.get, "/metadata"), (.get, "/label"), (.get, "/openapi.yaml"),
        (.post, "/predict"), (.get, "/predict/test"), (.get, "/job/:id"), (.delete, "/job/:id"),
        (.get, "/jobs"), (.get, "/events"),
    ] + ProbeRoutes.paths.map { (.get, $0) } + ConsoleAssets.paths.map { (.get, $0) }

    /// `GET /health/ready`: connected to the broker, and the result store's
    /// ledger stats are fresh (the store runs and reaches the broker).
    public var readiness: Readiness {
        Readiness([
            Readiness.broker { [client] in client.isConnected },
            .init("ledger") { [gauge] in gauge.staleness().map { "no ledger stats from the result store: \($0)" } },
        ])
    }

    /// The routes of the book's async API.
    func makeRouter() -> Router<IngressRequestContext> {
        let router = Router(context: IngressRequestContext.self)
        // A span per request (W3C traceparent from the request's headers, if it has one).
        router.add(middleware: TracingMiddleware())
        router.add(middleware: HTTPMetricsMiddleware())
        router.add(middleware: JSONErrorMiddleware(routes: Self.routes))
        if !configuration.apiKeys.isEmpty {
            router.add(middleware: APIKeyMiddleware(keys: configuration.apiKeys))
        }
        router.get("/health") { _, _ in JSONBody.response(["health": "ok"]) }
        ProbeRoutes.add(to: router, readiness: readiness)
        router.get("/metadata") { _, _ in
            let resolved = try self.model?.resolved ?? self.announcedDefaultModel()
            return TFServingREST.json(StatusJSON.metadata(resolved), status: .ok)
        }
        router.get("/label") { _, _ in
            if let model = self.model { return JSONBody.response(model.labels) }
            return JSONBody.response(try self.announcedDefaultModel().info.classNames)
        }
        router.get("/openapi.yaml") { _, _ in OpenAPIDocument.response() }
        router.post("/predict") { request, context in
            try await self.predict(request, client: context.clientAddress)
        }
        router.get("/predict/test") { _, context in
            try await self.predictTest(client: context.clientAddress)
        }
        router.get("/job/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            let wait = try request.uri.queryParameters.get("wait").map { text -> Double in
                guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
                    throw APIError(.badRequest, "wait must be a number of seconds")
                }
                return min(seconds, self.configuration.maxWaitSeconds)
            }
            return try await self.job(id, wait: wait ?? 0)
        }
        router.delete("/job/:id") { _, context in
            try await self.delete(context.parameters.get("id") ?? "")
        }
        router.get("/jobs") { request, _ in
            try await self.list(request)
        }
        router.get("/events") { _, _ in try self.events() }
        for path in ConsoleAssets.paths {
            router.get(RouterPath(path)) { _, _ in ConsoleAssets.response(path) }
        }
        return router
    }

    /// `GET /jobs`: the store's jobs, newest first, a page at a time.
    private func list(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var status: JobStatus?
        if let text = query.get("status"), !text.isEmpty {
            guard let value = JobStatus(rawValue: text) else {
                let known = JobStatus.allCases.map(\.rawValue).joined(separator: ", ")
                throw APIError(.badRequest, "status must be one of \(known)")
            }
            status = value
        }
        var model: String?
        if let text = query.get("model"), !text.isEmpty {
            guard Topics.isValidModelName(text) else { throw APIError(.badRequest, Topics.modelNameRule) }
            model = text
        }
        var limit = 20
        if let text = query.get("limit") {
            guard let value = Int(text), (1...StoreQuery.maxListLimit).contains(value) else {
                throw APIError(.badRequest, "limit must be an integer from 1 to \(StoreQuery.maxListLimit)")
            }
            limit = value
        }
        let before = query.get("before").flatMap { $0.isEmpty ? nil : $0 }
        if let before, JobPage.Cursor(before) == nil {
            throw APIError(.badRequest, "before must be the next cursor of a previous page, or milliseconds since 1970")
        }
        let page: JobPage
        do {
            page = try await store.jobs(status: status, model: model, limit: limit, before: before,
                                        timeout: configuration.storeTimeout)
        } catch {
            throw storeUnavailable(error, about: "the job list")
        }
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: page.jsonPayload())))
    }

    /// `DELETE /job/{id}`: cancels a job that has not ended, deletes the data
    /// of one that has.
    private func delete(_ id: String) async throws -> Response {
        guard JobID.isValid(id) else { throw APIError(.notFound, "no job \(id)") }
        let deletion: JobDeletion?
        do {
            deletion = try await store.delete(id, timeout: configuration.storeTimeout)
        } catch {
            throw storeUnavailable(error, about: "job \(id)")
        }
        guard let deletion else { throw APIError(.notFound, "no job \(id)") }
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: deletion.jsonPayload())))
    }

    /// `GET /events`: the console's live feed, as Server-Sent Events.
    private func events() throws -> Response {
        guard let (_, stream) = feed.subscribe() else {
            var busy = APIError(.serviceUnavailable, "\(feed.maxClients) clients are connected to /events already; try again later")
            busy.headers[.retryAfter] = "10"
            throw busy
        }
        return Response(status: .ok,
                        headers: [.contentType: "text/event-stream", .cacheControl: "no-cache",
                                  // Tells proxies such as nginx not to buffer the stream.
                                  .init("X-Accel-Buffering")!: "no"],
                        body: ResponseBody { writer in
                            for await message in stream { try await writer.write(message) }
                            try await writer.finish(nil)
                        })
    }

    /// The 503 for a store that did not answer.
    private func storeUnavailable(_ error: any Error, about subject: String) -> APIError {
        logger.error("result store did not answer for \(subject): \(error)")
        var unavailable = APIError(.serviceUnavailable, "the result store is unavailable; try again")
        unavailable.headers[.retryAfter] = "1"
        return unavailable
    }

    private func predict(_ request: Request, client: String?) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxBodyBytes)
        } catch {
            // collectBody fails only when the body passes the limit.
            throw APIError(.contentTooLarge, "request body over \(configuration.maxBodyBytes) bytes")
        }
        let parsed: PredictRequest
        do {
            parsed = try PredictRequest(json: Data(body.readableBytesView))
        } catch {
            throw APIError(.badRequest, error.message)
        }
        return try await submit(parsed.image, topK: parsed.topK, client: client)
    }

    private func predictTest(client: String?) async throws -> Response {
        guard let path = configuration.sampleImagePath else {
            throw APIError(.notFound, "no sample image configured (CONVEYOR_SAMPLE_IMAGE)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw APIError(.internalServerError, "cannot read the sample image")
        }
        return try await submit(data, topK: 5, client: client)
    }

    /// Checks the image header, publishes the job and answers 202 with its id.
    private func submit(_ image: Data, topK: Int, client: String?) async throws -> Response {
        let size: (width: Int, height: Int)
        do {
            size = try decoder.header([UInt8](image))
        } catch let error {
            switch error {
            case .tooLarge: throw APIError(.contentTooLarge, "\(error)")
            default: throw APIError(.badRequest, "\(error)")
            }
        }
        // `header` only reads the size; the pixel limit is ours to apply.
        if size.width * size.height > configuration.maxPixels {
            let error = ImageError.tooLarge(width: size.width, height: size.height, limit: configuration.maxPixels)
            throw APIError(.contentTooLarge, "\(error)")
        }
        let request = JobRequest(jobID: JobID.make(), model: configuration.modelName, topK: topK, image: image)
        do {
            try await submitter.submit([request], to: Topics.requests(model: configuration.modelName),
                                       from: SubmissionOrigin(address: client, frontend: .http))
        } catch {
            throw APIError(refusal: error)
        }
        return JSONBody.response(["job_id": request.jobID], status: .accepted)
    }

    /// `GET /job/{id}`: `{"<id>": <the job's result JSON>}`, the book's shape
    /// (`prediction` is the top-1 label, or "" until the job succeeds) with
    /// the result's own fields, as on its result topic and in `GET /jobs`.
    private func job(_ id: String, wait: Double) async throws -> Response {
        guard JobID.isValid(id) else { throw APIError(.notFound, "no job \(id)") }
        guard wait > 0 else {
            guard let record = try await lookup(id) else { throw APIError(.notFound, "no job \(id)") }
            return JSONBody.response([id: record])
        }
        // Listen first, then ask the store: a result published in between is not missed.
        let token = watcher.register(id)
        let stored: JobResult?
        do { stored = try await lookup(id) } catch {
            watcher.unregister(id, token)
            throw error
        }
        var record = stored
        if let r = stored, r.status.isTerminal {
            watcher.unregister(id, token)
        } else if let result = await watcher.wait(id, token, timeout: .milliseconds(Int(wait * 1000))) {
            record = result
        } else {
            record = try await lookup(id)
        }
        guard let record else { throw APIError(.notFound, "no job \(id)") }
        return JSONBody.response([id: record])
    }

    private func lookup(_ id: String) async throws -> JobResult? {
        do {
            return try await store.job(id, timeout: configuration.storeTimeout)
        } catch {
            throw storeUnavailable(error, about: "job \(id)")
        }
    }
}
