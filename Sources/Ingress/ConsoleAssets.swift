import Hummingbird

/// The web console's page and assets (`Sources/Ingress/Console`), compiled
/// into the binary (SwiftPM `embedInCode`): nothing beside `conveyor` is
/// needed and nothing is loaded from elsewhere, so the page works offline.
enum ConsoleAssets {
    /// Path → (bytes, content type). Served without an API key: the page asks
    /// for the key and sends it with its API calls.
    static let files: [String: (bytes: [UInt8], contentType: String)] = [
        "/": (PackageResources.index_html, "text/html; charset=utf-8"),
        "/console/console.js": (PackageResources.console_js, "text/javascript; charset=utf-8"),
        "/console/console.css": (PackageResources.console_css, "text/css; charset=utf-8"),
    ]

    /// The paths served.
    static var paths: [String] { files.keys.sorted() }

    /// The response for one of ``paths``.
    static func response(_ path: String) -> Response {
        guard let file = files[path] else { return Response(status: .notFound) }
        var buffer = ByteBufferAllocator().buffer(capacity: file.bytes.count)
        buffer.writeBytes(file.bytes)
        return Response(status: .ok,
                        headers: [.contentType: file.contentType, .cacheControl: "no-cache",
                                  // Only our own scripts, styles and API: no injected or remote content runs.
                                  .contentSecurityPolicy: "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
                                  .init("X-Content-Type-Options")!: "nosniff"],
                        body: .init(byteBuffer: buffer))
    }
}
