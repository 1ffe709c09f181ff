import Hummingbird

/// The OpenAPI document of the HTTP API (`openapi.yaml` at the repository root, kept by
/// hand), compiled into the binary (SwiftPM `embedInCode`), so an installed `conveyor` serves
/// it without any file beside it.
public enum OpenAPIDocument {
    /// The document's bytes, as in the repository.
    public static var bytes: [UInt8] { PackageResources.openapi_yaml }

    /// `GET /openapi.yaml`.
    static func response() -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: buffer))
    }
}
