import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRPCCore
import GRPCNIOTransportHTTP2
import Jobs
import MQTT
import SwiftProtobuf
import TFServingAPI
import TFServing
import TFServingGRPC

/// `conveyor predict`: the book's `request_inception_v3` client, over any of
/// Conveyor's front doors. Prints the label (or the model's metadata).
struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify an image through a running Conveyor and print the label.",
        discussion: """
        Formats: rest (TF Serving REST, port 8501), grpc (TF Serving gRPC, port 8500), \
        http-async (the job API: POST /predict then GET /job/<id>, port 8000), mqtt (publish the \
        JPEG on the model's request topic and read the job's result topic, port 1883).
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case rest, grpc
        case httpAsync = "http-async"
        case mqtt
    }

    @Argument(help: "A JPEG file (not needed with --metadata).")
    var image: String?

    @Option(help: "rest, grpc, http-async or mqtt.")
    var format: Format = .rest

    @Option(help: "HOST or HOST:PORT (default localhost and the format's port).")
    var target: String = "localhost"

    @Option(help: "The model's name.")
    var model: String = "inception_v3"

    @Flag(help: "Print the model's metadata instead of classifying.")
    var metadata = false

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 30

    @Option(help: "A file whose first line is the API key to send (`Authorization: Bearer <key>`; gRPC metadata `authorization`).")
    var apiKeyFile: String?

    /// The key from --api-key-file, if given.
    private func apiKey() throws -> String? {
        guard let apiKeyFile else { return nil }
        guard let text = try? String(contentsOfFile: apiKeyFile, encoding: .utf8),
              let key = text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { !$0.isEmpty && !$0.hasPrefix("#") }) else {
            throw ValidationError("--api-key-file \(apiKeyFile): cannot read a key from it")
        }
        return key
    }

    func validate() throws {
        if !metadata && image == nil { throw ValidationError("give an IMAGE, or --metadata") }
    }

    func run() async throws {
        let (host, port) = try endpoint()
        switch format {
        case .rest:
            if metadata {
                print(try await http("GET", host, port, "/v1/models/\(model)/metadata"))
            } else {
                let body = try JSONSerialization.data(withJSONObject: ["inputs": ["image": [try urlSafeBase64()]]])
                let reply = try await http("POST", host, port, "/v1/models/\(model):predict", body: body)
                guard let outputs = (try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any])?["outputs"] as? [String],
                      let label = outputs.first else { throw ValidationError("unexpected answer: \(reply)") }
                print(label)
            }
        case .grpc:
            try await grpc(host, port)
        case .httpAsync:
            if metadata {
                print(try await http("GET", host, port, "/metadata"))
                return
            }
            let body = try JSONSerialization.data(withJSONObject: ["image_data": try jpeg().base64EncodedString()])
            let accepted = try await http("POST", host, port, "/predict", body: body)
            guard let id = (try JSONSerialization.jsonObject(with: Data(accepted.utf8)) as? [String: Any])?["job_id"] as? String else {
                throw ValidationError("unexpected answer: \(accepted)")
            }
            let job = try await http("GET", host, port, "/job/\(id)?wait=\(Int(timeout.rounded(.up)))")
            let record = (try JSONSerialization.jsonObject(with: Data(job.utf8)) as? [String: Any])?[id] as? [String: Any]
            guard let status = record?["status"] as? String, status == "succeeded", let label = record?["prediction"] as? String else {
                throw ValidationError("job \(id) did not succeed in \(timeout) s: \(job)")
            }
            print(label)
        case .mqtt:
            try await mqtt(host, port)
        }
    }

    private func endpoint() throws -> (String, Int) {
        let defaults: [Format: Int] = [.rest: 8501, .grpc: 8500, .httpAsync: 8000, .mqtt: 1883]
        let parts = target.split(separator: ":")
        guard parts.count <= 2, let host = parts.first.map(String.init), !host.isEmpty else {
            throw ValidationError("--target is HOST or HOST:PORT")
        }
        guard let port = parts.count == 2 ? Int(parts[1]) : defaults[format] else {
            throw ValidationError("--target has an invalid port")
        }
        return (host, port)
    }

    private func jpeg() throws -> Data {
        guard let path = image, let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(image ?? "")")
        }
        return data
    }

    /// The book's encoding: URL-safe base64 of the JPEG.
    private func urlSafeBase64() throws -> String {
        try jpeg().base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    private func http(_ method: String, _ host: String, _ port: Int, _ path: String, body: Data? = nil) async throws -> String {
        guard let url = URL(string: "http://\(host):\(port)\(path)") else { throw ValidationError("bad URL") }
        var request = URLRequest(url: url, timeoutInterval: timeout + 5)
        request.httpMethod = method
        if let key = try apiKey() { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else { throw ValidationError("HTTP \(status): \(text)") }
        return text
    }

    private func grpc(_ host: String, _ port: Int) async throws {
        let transport = try HTTP2ClientTransport.Posix(target: .dns(host: host, port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let service = Tensorflow_Serving_PredictionService.Client(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = .milliseconds(Int(timeout * 1000))
            var headers = Metadata()
            if let key = try apiKey() { headers.addString("Bearer \(key)", forKey: "authorization") }
            if metadata {
                var request = Tensorflow_Serving_GetModelMetadataRequest()
                request.modelSpec.name = model
                request.metadataField = ["signature_def"]
                let response = try await service.getModelMetadata(request, metadata: headers, options: options)
                guard let packed = response.metadata["signature_def"] else { throw ValidationError("no signature_def in the answer") }
                let signatures = try Tensorflow_Serving_SignatureDefMap(unpackingAny: packed)
                print(try response.modelSpec.jsonString())
                print(try signatures.jsonString())
                return
            }
            var request = Tensorflow_Serving_PredictRequest()
            request.modelSpec.name = model
            request.modelSpec.signatureName = "serving_default"
            var tensor = Tensorflow_TensorProto()
            tensor.dtype = .dtString
            var dim = Tensorflow_TensorShapeProto.Dim()
            dim.size = 1
            tensor.tensorShape.dim = [dim]
            tensor.stringVal = [try jpeg()]
            request.inputs["image"] = tensor
            let response = try await service.predict(request, metadata: headers, options: options)
            guard let label = response.outputs["output_0"]?.stringVal.first else {
                throw ValidationError("no prediction in the answer")
            }
            print(String(decoding: label, as: UTF8.self))
        }
    }

    private func mqtt(_ host: String, _ port: Int) async throws {
        var config = try MQTTConfiguration(url: "mqtt://\(host):\(port)", clientID: "predict-\(ProcessInfo.processInfo.processIdentifier)")
        config.protocolVersion = .v5
        let client = MQTTClient(config)
        try await client.connect()
        defer { Task { await client.disconnect() } }
        if metadata {
            let announcements = try await client.subscribe(Topics.allServables, qos: 1)
            var found = false
            for await message in announcements where !message.payload.isEmpty {
                print(String(decoding: message.payload, as: UTF8.self))
                found = true
                break
            }
            if !found { throw ValidationError("no worker announcement") }
            return
        }
        let request = JobRequest(jobID: JobID.make(), model: model, image: try jpeg())
        let results = try await client.subscribe(Topics.result(job: request.jobID), qos: 1)
        let (payload, properties) = request.binaryMessage()
        try await client.publish(Topics.requests(model: model), payload: payload, qos: 1, properties: properties)
        let answer = try await withThrowingTaskGroup(of: JobResult?.self) { group in
            group.addTask {
                for await message in results {
                    if let result = try? JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload)),
                       result.status.isTerminal { return result }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            await results.cancel()
            return first
        }
        guard let answer else { throw ValidationError("no result for job \(request.jobID) in \(timeout) s") }
        guard answer.status == .succeeded else {
            throw ValidationError("job \(request.jobID) \(answer.status.rawValue): \(answer.error ?? "")")
        }
        print(answer.prediction)
    }
}
