import Foundation
import Jobs
import Logging
import MQTT
import TFServing

/// Answers TF Serving requests (REST and gRPC) through the pipeline: each
/// example becomes a job published to the version's request topic, and the
/// answer is assembled from the jobs' results, which arrive on their result
/// topics. Status and metadata come from the workers' announcements
/// (``TFServing/ModelCatalog``), so the ingress never loads a model.
public final class TFServingFrontend: Sendable {
    public let catalog: ModelCatalog
    private let watcher: ResultWatcher
    /// Accepts the jobs: nothing is accepted that the ledger does not hold.
    private let submitter: JobSubmitter
    /// How long a request waits for all its results (then DEADLINE_EXCEEDED).
    public let timeout: Duration
    /// Most examples in one request.
    public let maxExamples: Int
    private let logger: Logger

    init(catalog: ModelCatalog, submitter: JobSubmitter, watcher: ResultWatcher, timeout: Duration,
         maxExamples: Int, logger: Logger) {
        self.catalog = catalog
        self.submitter = submitter
        self.watcher = watcher
        self.timeout = timeout
        self.maxExamples = maxExamples
        self.logger = logger
    }

    // MARK: REST

    /// Answers one REST call from `origin` (its address is the rate limit's key); `path` is already parsed.
    public func rest(_ path: RESTPath, body: [UInt8], origin: SubmissionOrigin) async throws(TFServingError) -> JSONValue {
        switch path.action {
        case .status:
            return StatusJSON.status(try catalog.status(model: path.model, path.selector))
        case .metadata:
            return StatusJSON.metadata(try catalog.resolve(model: path.model, path.selector))
        case .predict:
            let resolved = try catalog.resolve(model: path.model, path.selector)
            let request = try PredictRequestBody.parse(body) { (name: String) throws(TFServingError) in
                try ModelSignatures.signature(name, for: resolved.info)
            }
            let outputs = try await predict(resolved, signature: request.signatureName, inputs: request.inputs, origin: origin)
            return PredictResponseBody.encode(outputs, format: request.format)
        case .classify:
            let resolved = try catalog.resolve(model: path.model, path.selector)
            let request = try ClassifyRequestBody.parse(body) { (name: String) throws(TFServingError) in
                try Self.classificationSignature(name, for: resolved.info)
            }
            return ClassifyRequestBody.encode(try await classify(resolved, input: request.input, origin: origin))
        case .regress:
            throw TFServingError(.unimplemented, "Regress is not supported: Conveyor serves classification models")
        }
    }

    /// `:classify` accepts the `classify` signature, which is also the default.
    static func classificationSignature(_ name: String, for info: ServableAnnouncement.Version) throws(TFServingError) -> Signature {
        let key = name.isEmpty || name == Signature.defaultKey ? "classify" : name
        let signature = try ModelSignatures.signature(key, for: info)
        guard signature.method == Signature.classifyMethod else {
            throw .invalid("Expected classification signature method_name to be tensorflow/serving/classify. Was: \(signature.method)")
        }
        return signature
    }

    // MARK: Shared by REST and gRPC

    /// Runs a predict request: returns the signature's outputs, batch first.
    public func predict(_ resolved: ModelCatalog.Resolved, signature name: String,
                        inputs: [String: Tensor], origin: SubmissionOrigin) async throws(TFServingError) -> [(name: String, tensor: Tensor)] {
        let signature = try ModelSignatures.signature(name, for: resolved.info)
        guard signature.method == Signature.predictMethod else {
            throw .invalid("Expected prediction signature method_name to be tensorflow/serving/predict. Was: \(signature.method)")
        }
        guard let spec = signature.inputs.first, let input = inputs[spec.name] else {
            throw .invalid("Missing input '\(signature.inputs.first?.name ?? "")'")
        }
        let batched = resolved.info.kind == .tensor ? try TensorModelIO.batched(input, info: resolved.info, name: spec.name) : input
        let results = try await run(resolved, examples: try examples(batched, info: resolved.info), origin: origin)
        if resolved.info.kind == .tensor {
            // The model's own output, as is.
            return [(signature.outputs[0].name, try TensorModelIO.output(results, info: resolved.info))]
        }
        let batch = results.count
        var outputs: [(String, Tensor)] = []
        for output in signature.outputs {
            switch output.name {
            case "output_0":
                outputs.append((output.name, .strings(results.map(\.prediction), shape: [batch])))
            case "classes":
                let k = output.shape.last ?? ModelSignatures.imageTopK
                outputs.append((output.name, .strings(results.flatMap { Self.padded($0.top, k).map(\.label) }, shape: [batch, k])))
            case "scores":
                let k = output.shape.last ?? ModelSignatures.imageTopK
                outputs.append((output.name, .floats(results.flatMap { Self.padded($0.top, k).map(\.score) }, shape: [batch, k])))
            default:
                throw TFServingError(.internal, "Output '\(output.name)' is not one an image model has")
            }
        }
        return outputs
    }

    /// Runs a classify request: the classes of each example, best first.
    public func classify(_ resolved: ModelCatalog.Resolved, input: Tensor, origin: SubmissionOrigin) async throws(TFServingError) -> [[(label: String, score: Float)]] {
        let results = try await run(resolved, examples: try examples(input, info: resolved.info), origin: origin)
        return results.map { $0.top.map { (label: $0.label, score: $0.score) } }
    }

    private static func padded(_ top: [ClassScore], _ k: Int) -> [ClassScore] {
        Array(top.prefix(k)) + Array(repeating: ClassScore(index: -1, label: "", score: 0), count: max(0, k - top.count))
    }

    private enum Example {
        case image(Data)
        case tensor([Float])
    }

    /// Splits a batched input into one job input per example.
    private func examples(_ input: Tensor, info: ServableAnnouncement.Version) throws(TFServingError) -> [Example] {
        guard let batch = input.shape.first, input.shape.count >= 1 else {
            throw .invalid("Input must have a batch dimension, got a scalar")
        }
        guard batch >= 1 else { throw .invalid("Input has no examples") }
        guard batch <= maxExamples else {
            throw .invalid("Too many examples: \(batch) (at most \(maxExamples) per request)")
        }
        switch info.kind {
        case .image:
            guard case .strings(let values) = input.values, input.shape.count == 1 else {
                throw .invalid("Input 'image' must be a list of encoded images (DT_STRING of shape [-1]), got \(input.dtype.rawValue) of shape \(input.shape)")
            }
            var images: [Example] = []
            for (i, bytes) in values.enumerated() {
                if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 {
                    images.append(.image(Data(bytes)))
                } else if let text = String(validating: bytes, as: UTF8.self), let data = Base64.decode(text), !data.isEmpty {
                    images.append(.image(data))
                } else {
                    throw .invalid("Example \(i) is neither JPEG bytes nor base64 text of an image")
                }
            }
            return images
        case .tensor:
            // Shaped [batch] + inputShape by TensorModelIO.batched.
            guard case .numbers(let numbers) = input.values, Array(input.shape.dropFirst()) == info.inputShape else {
                throw .invalid("Input must be a DT_FLOAT tensor of shape \([-1] + info.inputShape), got \(input.dtype.rawValue) of shape \(input.shape)")
            }
            let size = info.inputShape.reduce(1, *)
            let floats = numbers.map { Float($0) }
            return (0..<batch).map { .tensor(Array(floats[($0 * size)..<(($0 + 1) * size)])) }
        }
    }

    /// Publishes one job per example to the version's request topic and waits
    /// for every result.
    private func run(_ resolved: ModelCatalog.Resolved, examples: [Example], origin: SubmissionOrigin) async throws(TFServingError) -> [JobResult] {
        let topK = resolved.info.kind == .image ? ModelSignatures.imageTopK : max(resolved.info.classes, 1)
        let requests: [JobRequest] = examples.map { example in
            switch example {
            case .image(let data):
                JobRequest(jobID: JobID.make(), model: resolved.model, version: Int(resolved.version), topK: topK, image: data)
            case .tensor(let values):
                JobRequest(jobID: JobID.make(), model: resolved.model, version: Int(resolved.version), topK: topK,
                           tensor: values, shape: resolved.info.inputShape)
            }
        }
        let tokens = requests.map { watcher.register($0.jobID) }
        // However this ends, stop collecting for the jobs not waited for (a no-op for the others).
        defer { for (r, t) in zip(requests, tokens) { watcher.unregister(r.jobID, t) } }
        do {
            try await submitter.submit(requests, to: Topics.requests(model: resolved.model, version: resolved.version),
                                       from: origin)
        } catch {
            // TF Serving's messages start with a capital letter.
            let message = error.message.prefix(1).uppercased() + error.message.dropFirst()
            if case let .rateLimited(_, wait) = error {
                throw TFServingError(.resourceExhausted, message, retryAfter: wait)
            }
            throw TFServingError(.unavailable, message)
        }
        let deadline = ContinuousClock.now + timeout
        var results: [JobResult] = []
        for (request, token) in zip(requests, tokens) {
            let remaining = max(deadline - ContinuousClock.now, .zero)
            guard let result = await watcher.wait(request.jobID, token, timeout: remaining) else {
                throw TFServingError(.deadlineExceeded, "Deadline Exceeded: no result for job \(request.jobID) within \(timeout) (it stays queued; poll GET /job/\(request.jobID) on the job API)")
            }
            guard result.status == .succeeded else {
                let reason = result.error ?? "no reason given"
                let code: TFServingError.Code = result.status == .expired ? .deadlineExceeded
                    : result.status == .cancelled ? .cancelled
                    : reason.hasPrefix("bad ") ? .invalidArgument : .internal
                throw TFServingError(code, "Example \(results.count) (job \(request.jobID)) \(result.status.rawValue): \(reason)")
            }
            results.append(result)
        }
        return results
    }
}
