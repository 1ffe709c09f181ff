import Foundation
import GRPCCore
import SwiftProtobuf
import TFServing
import TFServingAPI
import TFServingGRPC

/// TF Serving's `tensorflow.serving.PredictionService` over gRPC (Predict,
/// Classify, GetModelMetadata), answered by the same ``TFServingFrontend`` as
/// the REST API.
struct PredictionServiceHandler: Tensorflow_Serving_PredictionService.SimpleServiceProtocol {
    let frontend: TFServingFrontend

    func predict(request: Tensorflow_Serving_PredictRequest,
                 context: ServerContext) async throws -> Tensorflow_Serving_PredictResponse {
        try await RPCFailure.mapping {
            let resolved = try frontend.catalog.resolve(model: request.modelSpec.name, request.modelSpec.selector)
            var inputs: [String: Tensor] = [:]
            for (name, proto) in request.inputs { inputs[name] = try Tensor(proto: proto, name: name) }
            let signatureName = request.modelSpec.signatureName.isEmpty ? Signature.defaultKey : request.modelSpec.signatureName
            let signature = try ModelSignatures.signature(signatureName, for: resolved.info)
            for name in inputs.keys where signature.input(named: name) == nil {
                throw TFServingError.invalid("input tensor alias not found in signature: \(name). Inputs expected to be in the set {\(signature.inputs.map(\.name).joined(separator: ","))}.")
            }
            var outputs = try await frontend.predict(resolved, signature: signatureName, inputs: inputs,
                                                     origin: SubmissionOrigin(address: RPCFailure.clientAddress(context), frontend: .tfServingGRPC))
            if !request.outputFilter.isEmpty {
                for name in request.outputFilter where !outputs.contains(where: { $0.name == name }) {
                    throw TFServingError.invalid("output tensor alias not found in signature: \(name)")
                }
                outputs = outputs.filter { request.outputFilter.contains($0.name) }
            }
            var response = Tensorflow_Serving_PredictResponse()
            response.modelSpec = .init(model: resolved.model, version: resolved.version, signature: signatureName)
            for (name, tensor) in outputs { response.outputs[name] = tensor.proto }
            return response
        }
    }

    func classify(request: Tensorflow_Serving_ClassificationRequest,
                  context: ServerContext) async throws -> Tensorflow_Serving_ClassificationResponse {
        try await RPCFailure.mapping {
            let resolved = try frontend.catalog.resolve(model: request.modelSpec.name, request.modelSpec.selector)
            let signature = try TFServingFrontend.classificationSignature(request.modelSpec.signatureName, for: resolved.info)
            let spec = signature.inputs[0]
            var examples: [Tensorflow_Example] = []
            var shared: Tensorflow_Example?
            switch request.input.kind {
            case .exampleList(let list)?: examples = list.examples
            case .exampleListWithContext(let list)?:
                examples = list.examples
                shared = list.context
            case nil: break
            }
            guard !examples.isEmpty else { throw TFServingError.invalid("Input is empty: no examples") }
            var parts: [Tensor] = []
            for (i, example) in examples.enumerated() {
                guard let feature = example.features.feature[spec.name] ?? shared?.features.feature[spec.name] else {
                    throw TFServingError.invalid("example \(i) has no feature '\(spec.name)'")
                }
                parts.append(try Self.tensor(feature, spec: spec, example: i))
            }
            guard Set(parts.map(\.shape)).count == 1 else {
                throw TFServingError.invalid("feature '\(spec.name)' has different lengths in different examples")
            }
            let input = PredictRequestBody.stack(parts)
            let classified = try await frontend.classify(resolved, input: input, origin: SubmissionOrigin(address: RPCFailure.clientAddress(context), frontend: .tfServingGRPC))
            var response = Tensorflow_Serving_ClassificationResponse()
            response.modelSpec = .init(model: resolved.model, version: resolved.version, signature: "classify")
            response.result.classifications = classified.map { classes in
                var list = Tensorflow_Serving_Classifications()
                list.classes = classes.map { entry in
                    var c = Tensorflow_Serving_Class()
                    c.label = entry.label
                    c.score = entry.score
                    return c
                }
                return list
            }
            return response
        }
    }

    func getModelMetadata(request: Tensorflow_Serving_GetModelMetadataRequest,
                          context: ServerContext) async throws -> Tensorflow_Serving_GetModelMetadataResponse {
        try await RPCFailure.mapping {
            guard request.metadataField == ["signature_def"] else {
                throw TFServingError.invalid("Metadata field \(request.metadataField.first(where: { $0 != "signature_def" }) ?? "(none)") is not supported; only \"signature_def\" is")
            }
            let resolved = try frontend.catalog.resolve(model: request.modelSpec.name, request.modelSpec.selector)
            var map = Tensorflow_Serving_SignatureDefMap()
            for (key, signature) in ModelSignatures.all(for: resolved.info) {
                var def = Tensorflow_SignatureDef()
                def.methodName = signature.method
                for spec in signature.inputs { def.inputs[spec.name] = Self.info(spec) }
                for spec in signature.outputs { def.outputs[spec.name] = Self.info(spec) }
                map.signatureDef[key] = def
            }
            var response = Tensorflow_Serving_GetModelMetadataResponse()
            response.modelSpec = .init(model: resolved.model, version: resolved.version, signature: "")
            response.metadata["signature_def"] = try Google_Protobuf_Any(message: map)
            return response
        }
    }

    private static func info(_ spec: Signature.TensorSpec) -> Tensorflow_TensorInfo {
        var info = Tensorflow_TensorInfo()
        info.name = "\(spec.name):0"
        info.dtype = Tensorflow_DataType(rawValue: spec.dtype.number) ?? .dtInvalid
        info.tensorShape.dim = spec.shape.map { size in
            var dim = Tensorflow_TensorShapeProto.Dim()
            dim.size = Int64(size)
            return dim
        }
        return info
    }

    private static func tensor(_ feature: Tensorflow_Feature, spec: Signature.TensorSpec,
                               example: Int) throws(TFServingError) -> Tensor {
        switch (feature.kind, spec.dtype) {
        case (.bytesList(let list)?, .string):
            guard list.value.count == 1 else {
                throw .invalid("example \(example): feature '\(spec.name)' must hold one encoded image, not \(list.value.count)")
            }
            return Tensor(dtype: .string, shape: [], values: .strings([[UInt8](list.value[0])]))
        case (.floatList(let list)?, .float):
            return Tensor(dtype: .float, shape: [list.value.count], values: .numbers(list.value.map(Double.init)))
        case (.int64List(let list)?, .float):
            return Tensor(dtype: .float, shape: [list.value.count], values: .numbers(list.value.map(Double.init)))
        default:
            throw .invalid("example \(example): feature '\(spec.name)' must be a \(spec.dtype == .string ? "bytes_list" : "float_list")")
        }
    }
}

/// TF Serving's `tensorflow.serving.ModelService` (GetModelStatus) over gRPC.
struct ModelServiceHandler: Tensorflow_Serving_ModelService.SimpleServiceProtocol {
    let frontend: TFServingFrontend

    func getModelStatus(request: Tensorflow_Serving_GetModelStatusRequest,
                        context: ServerContext) async throws -> Tensorflow_Serving_GetModelStatusResponse {
        try await RPCFailure.mapping {
            let statuses = try frontend.catalog.status(model: request.modelSpec.name, request.modelSpec.selector)
            var response = Tensorflow_Serving_GetModelStatusResponse()
            response.modelVersionStatus = statuses.map { status in
                var entry = Tensorflow_Serving_ModelVersionStatus()
                entry.version = status.version
                entry.state = Tensorflow_Serving_ModelVersionStatus.State(rawValue: status.state.number) ?? .unknown
                entry.status.errorCode = status.error == nil ? .ok : .unknown
                entry.status.errorMessage = status.error ?? ""
                return entry
            }
            return response
        }
    }
}

/// Turns a ``TFServing/TFServingError`` into the gRPC status with the same code.
enum RPCFailure {
    /// The caller's IP address from grpc-swift's peer description
    /// (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`), for the rate limit.
    static func clientAddress(_ context: ServerContext) -> String {
        let peer = context.remotePeer
        if peer.hasPrefix("ipv6:["), let end = peer.firstIndex(of: "]") {
            return String(peer[peer.index(peer.startIndex, offsetBy: 6)..<end])
        }
        if peer.hasPrefix("ipv4:") {
            let rest = peer.dropFirst(5)
            return String(rest[..<(rest.lastIndex(of: ":") ?? rest.endIndex)])
        }
        return peer
    }

    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TFServingError {
            let code: RPCError.Code = switch error.code {
            case .cancelled: .cancelled
            case .invalidArgument: .invalidArgument
            case .deadlineExceeded: .deadlineExceeded
            case .notFound: .notFound
            case .resourceExhausted: .resourceExhausted
            case .failedPrecondition: .failedPrecondition
            case .unimplemented: .unimplemented
            case .internal: .internalError
            case .unavailable: .unavailable
            case .unauthenticated: .unauthenticated
            }
            throw RPCError(code: code, message: error.message)
        }
    }
}
