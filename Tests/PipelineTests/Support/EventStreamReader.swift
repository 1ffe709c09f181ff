import Foundation

/// Reads a Server-Sent Events stream (`GET /events`) over a plain socket on its own
/// thread, as a browser would: the response's status line and headers, then `event:` /
/// `data:` messages, kept in arrival order. (URLSession on Linux cannot stream a body.)
final class EventStreamReader: @unchecked Sendable {
    // @unchecked Sendable: the fields below are only touched with `lock` held.

    /// One message: its event name and its `data` lines joined.
    struct Event: Sendable {
        var name: String
        var data: String

        /// The data as a JSON object.
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] }
    }

    private let lock = NSLock()
    private var _events: [Event] = []
    private var _head = ""
    private var fd: Int32 = -1
    private var thread: Thread?

    /// Connects to `127.0.0.1:port` and sends `GET path` with `headers`.
    init(port: Int, path: String = "/events", headers: [String: String] = [:]) throws {
        #if canImport(Glibc)
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let socketFD = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socketFD >= 0 else { throw PipelineError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socketFD)
            throw PipelineError("connect to port \(port): \(String(cString: strerror(errno)))")
        }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        guard bytes.withUnsafeBytes({ send(socketFD, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            close(socketFD)
            throw PipelineError("could not send the request")
        }
        fd = socketFD
        let thread = Thread { [self] in readLoop(socketFD) }
        self.thread = thread
        thread.start()
    }

    deinit { stop() }

    /// Closes the connection (the server sees the client go).
    func stop() {
        lock.withLock {
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// The status line and headers, once read.
    var head: String { lock.withLock { _head } }

    var events: [Event] { lock.withLock { _events } }

    /// Waits until an event matching `predicate` has arrived, or `timeout` seconds pass.
    func first(timeout: TimeInterval, where predicate: (Event) -> Bool) async throws -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let match = events.first(where: predicate) { return match }
            try await Task.sleep(for: .milliseconds(50))
        }
        return events.first(where: predicate)
    }

    /// Reads until the connection ends. Chunked transfer encoding is undone by keeping only
    /// the lines that belong to SSE (`event:`, `data:`, blank), which is enough for JSON data
    /// on one line each.
    private func readLoop(_ socketFD: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var inHead = true
        var name = "message"
        var data: [String] = []
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            buffer += chunk[0..<count]
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                if line.hasSuffix("\r") { line.removeLast() }
                if inHead {
                    if line.isEmpty { inHead = false } else { lock.withLock { _head += line + "\n" } }
                    continue
                }
                if line.hasPrefix("event: ") {
                    name = String(line.dropFirst(7))
                } else if line.hasPrefix("data: ") {
                    data.append(String(line.dropFirst(6)))
                } else if line.isEmpty, !data.isEmpty {
                    let event = Event(name: name, data: data.joined(separator: "\n"))
                    lock.withLock { _events.append(event) }
                    name = "message"
                    data = []
                }
            }
        }
        lock.withLock {
            close(socketFD)
            fd = -1
        }
    }
}
