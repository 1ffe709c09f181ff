// All unsafe pointer code and every call into libmosquitto live in this file.

import CMosquitto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `mosquitto_lib_init` is not thread-safe and must run once per process. A global's
/// initialiser runs lazily, exactly once and thread-safely (swift_once), so touching this
/// value before creating a handle gives exactly that. `mosquitto_lib_cleanup` is never
/// called: the library stays initialised until the process exits.
private let libraryInitialisation: Int32 = mosquitto_lib_init()

// MQTT 5 property identifiers, as the `Int32` the property functions take.
private let propPayloadFormat = Int32(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR.rawValue)
private let propMessageExpiry = Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue)
private let propContentType = Int32(MQTT_PROP_CONTENT_TYPE.rawValue)
private let propResponseTopic = Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue)
private let propCorrelationData = Int32(MQTT_PROP_CORRELATION_DATA.rawValue)
private let propUserProperty = Int32(MQTT_PROP_USER_PROPERTY.rawValue)
private let propSessionExpiry = Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue)

/// Owns one `struct mosquitto *` and wraps the few libmosquitto calls ``MQTTClient`` needs.
///
/// The C callbacks are non-capturing closures ("trampolines") that find this object through
/// the handle's userdata (an unretained `Unmanaged` pointer) and only hand an ``Event`` to the
/// handler: they never block and never await. They all run on libmosquitto's network thread.
///
/// `@unchecked Sendable`: libmosquitto is built with thread support and its handle may be used
/// from any thread while the network thread runs; the handle pointer never changes, and this
/// object's own mutable state (`handler`, `loopRunning`, `loopThread`) is behind `lock`.
/// Starting, stopping and reconnecting the loop must be serialised by the caller.
final class Mosquitto: @unchecked Sendable {
    /// What the network thread reports.
    enum Event: Sendable {
        /// A CONNACK: `code` 0 is success, anything else a refusal (CONNACK return/reason code).
        case connected(code: Int, sessionPresent: Bool)
        /// The connection ended. `code` is a `mosq_err_t` for a network error, 0 after our own
        /// DISCONNECT, or (MQTT 5) the reason code of a DISCONNECT sent by the broker.
        case disconnected(code: Int)
        /// A QoS 0 message was written, or a QoS 1/2 one acknowledged with `reasonCode`.
        case published(mid: Int32, reasonCode: Int)
        /// A message arrived.
        case message(MQTTMessage)
        /// A SUBACK: one granted QoS (or failure code >= 0x80) per filter.
        case subscribed(mid: Int32, grantedQoS: [Int])
        /// An UNSUBACK.
        case unsubscribed(mid: Int32)
        /// A libmosquitto log line.
        case log(level: Int32, text: String)
    }

    static let success: Int32 = MOSQ_ERR_SUCCESS.rawValue
    static let noConnection: Int32 = MOSQ_ERR_NO_CONN.rawValue
    static let invalid: Int32 = MOSQ_ERR_INVAL.rawValue
    static let payloadTooLarge: Int32 = MOSQ_ERR_PAYLOAD_SIZE.rawValue

    private let handle: OpaquePointer
    /// Set when `mosquitto_new` or the configuration failed; ``MQTTClient/connect()`` throws it.
    private(set) var setupError: MQTTError?
    private let lock = NSLock()
    private var handler: (@Sendable (Event) -> Void)?
    private var loopRunning = false
    /// The thread that delivered the latest event: the network thread.
    private var loopThread: pthread_t?

    /// Creates the handle. Never fails: on error `setupError` is set and the handle is a placeholder.
    init(clientID: String, cleanStart: Bool) {
        _ = libraryInitialisation
        var created: OpaquePointer?
        if clientID.isEmpty {
            created = mosquitto_new(nil, cleanStart, nil)
        } else {
            created = mosquitto_new(clientID, cleanStart, nil)
        }
        if created == nil {
            let code = errno
            setupError = .library(
                code: Int(code),
                message: "mosquitto_new failed: \(String(cString: strerror(code)))"
                    + (clientID.isEmpty && !cleanStart ? " (an empty client ID needs cleanStart)" : "")
            )
            created = mosquitto_new(nil, true, nil)
        }
        guard let created else { fatalError("mosquitto_new failed twice: out of memory") }
        handle = created
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        installCallbacks()
    }

    deinit {
        lock.lock()
        let running = loopRunning
        let onLoopThread = running && loopThread.map { pthread_equal($0, pthread_self()) != 0 } == true
        lock.unlock()
        if onLoopThread {
            // The last reference went away inside one of our own callbacks: the network thread
            // cannot join itself. Detach this object from the handle, ask the loop to end, and
            // let another thread join it and free the handle.
            mosquitto_user_data_set(handle, nil)
            mosquitto_disconnect(handle)
            let box = HandleBox(handle: handle)
            Thread.detachNewThread {
                mosquitto_loop_stop(box.handle, false)
                mosquitto_destroy(box.handle)
            }
        } else {
            if running {
                mosquitto_disconnect(handle)
                mosquitto_loop_stop(handle, false)
            }
            mosquitto_destroy(handle)
        }
    }

    /// Sets the receiver of all events. Call before starting the loop.
    func setEventHandler(_ handler: @escaping @Sendable (Event) -> Void) {
        lock.lock()
        self.handler = handler
        lock.unlock()
    }

    // MARK: Configuration

    /// Applies protocol version, credentials, TLS and reconnect backoff. Errors go to `setupError`.
    func configure(_ configuration: MQTTConfiguration, logLines: Bool) {
        guard setupError == nil else { return }
        do {
            let version = configuration.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
            try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, version), "setting the protocol version")
            try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "setting TCP_NODELAY")
            if let username = configuration.username {
                let rc = withOptionalCString(configuration.password) { mosquitto_username_pw_set(handle, username, $0) }
                try check(rc, "setting the user name and password")
            }
            if let tls = configuration.tls {
                if tls.caFile.isEmpty {
                    try check(mosquitto_int_option(handle, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "using the OS CA store")
                }
                let rc = withOptionalCString(tls.caFile.isEmpty ? nil : tls.caFile) { ca in
                    withOptionalCString(tls.certFile) { cert in
                        withOptionalCString(tls.keyFile) { key in
                            mosquitto_tls_set(handle, ca, nil, cert, key, nil)
                        }
                    }
                }
                try check(rc, "setting up TLS (are the CA, certificate and key files readable?)")
                if tls.insecureSkipHostnameCheck {
                    try check(mosquitto_tls_insecure_set(handle, true), "disabling the TLS host name check")
                }
            }
            let minimum = max(1, configuration.reconnectDelayMin)
            let maximum = max(minimum, configuration.reconnectDelayMax)
            try check(
                mosquitto_reconnect_delay_set(handle, UInt32(minimum), UInt32(maximum), true),
                "setting the reconnect delay"
            )
            if logLines {
                mosquitto_log_callback_set(handle) { _, userdata, level, text in
                    guard let text else { return }
                    Mosquitto.from(userdata)?.deliver(.log(level: level, text: String(cString: text)))
                }
            }
        } catch let error as MQTTError {
            setupError = error
        } catch {
            setupError = .library(code: Int(Mosquitto.invalid), message: "\(error)")
        }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        if rc != Mosquitto.success {
            throw MQTTError.library(code: Int(rc), message: "\(what): \(Mosquitto.errorString(rc))")
        }
    }

    // MARK: Lifecycle (the caller serialises these)

    /// Starts a non-blocking connect; a connect that fails is retried by the network thread.
    func connectAsync(host: String, port: Int, keepAlive: Int) -> Int32 {
        guard (1...65535).contains(port), keepAlive >= 0, keepAlive <= 65535 else { return Mosquitto.invalid }
        return mosquitto_connect_bind_async(handle, host, Int32(port), Int32(keepAlive), nil)
    }

    /// Connects with MQTT 5 CONNECT properties (a session expiry interval).
    /// Blocks for the TCP connect (libmosquitto has no asynchronous variant
    /// taking properties), so call it from the lifecycle queue, never from a
    /// callback. A failure is not retried: the caller tries again.
    func connectV5(host: String, port: Int, keepAlive: Int, sessionExpiry: UInt32) -> Int32 {
        guard (1...65535).contains(port), keepAlive >= 0, keepAlive <= 65535 else { return Mosquitto.invalid }
        var list: OpaquePointer?
        defer { mosquitto_property_free_all(&list) }
        let rc = mosquitto_property_add_int32(&list, propSessionExpiry, sessionExpiry)
        if rc != Mosquitto.success { return rc }
        return mosquitto_connect_bind_v5(handle, host, Int32(port), Int32(keepAlive), nil, list)
    }

    /// Reconnects with the stored host and settings (non-blocking).
    func reconnectAsync() -> Int32 {
        mosquitto_reconnect_async(handle)
    }

    /// Starts the network thread (`mosquitto_loop_start`).
    func startLoop() -> Int32 {
        let rc = mosquitto_loop_start(handle)
        if rc == Mosquitto.success {
            lock.lock()
            loopRunning = true
            lock.unlock()
        }
        return rc
    }

    /// Joins the network thread. It only ends after `disconnect()` (or a fatal error), so call that first.
    /// Blocks: never call it from a callback or from the cooperative thread pool.
    func stopLoop() {
        lock.lock()
        let running = loopRunning
        lock.unlock()
        guard running else { return }
        mosquitto_loop_stop(handle, false)
        lock.lock()
        loopRunning = false
        lock.unlock()
    }

    /// Queues a DISCONNECT and marks the handle disconnected, so the network thread stops
    /// reconnecting and ends. Non-blocking; safe inside a callback.
    @discardableResult
    func disconnect() -> Int32 {
        mosquitto_disconnect(handle)
    }

    // MARK: Operations (any thread)

    /// Publishes; `properties` must be `nil` for MQTT 3.1.1. Returns the result code and message ID.
    func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool, properties: MQTTProperties?) -> (rc: Int32, mid: Int32) {
        guard payload.count <= Int(Int32.max) else { return (Mosquitto.payloadTooLarge, 0) }
        var list: OpaquePointer?
        defer { mosquitto_property_free_all(&list) }
        if let properties, !properties.isEmpty {
            let rc = Mosquitto.build(properties, into: &list)
            if rc != Mosquitto.success { return (rc, 0) }
        }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { bytes in
            mosquitto_publish_v5(handle, &mid, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos), retain, list)
        }
        return (rc, mid)
    }

    /// Sends a SUBSCRIBE for one filter. Returns the result code and message ID.
    func subscribe(_ filter: String, qos: Int) -> (rc: Int32, mid: Int32) {
        var mid: Int32 = 0
        let rc = mosquitto_subscribe_v5(handle, &mid, filter, Int32(qos), 0, nil)
        return (rc, mid)
    }

    /// Sends an UNSUBSCRIBE for one filter. Returns the result code and message ID.
    func unsubscribe(_ filter: String) -> (rc: Int32, mid: Int32) {
        var mid: Int32 = 0
        let rc = mosquitto_unsubscribe_v5(handle, &mid, filter, nil)
        return (rc, mid)
    }

    // MARK: Pure helpers

    /// `mosquitto_strerror`.
    static func errorString(_ rc: Int32) -> String {
        String(cString: mosquitto_strerror(rc))
    }

    /// The text of a CONNACK code: `mosquitto_reason_string` for MQTT 5, `mosquitto_connack_string` for 3.1.1.
    static func connackString(_ code: Int, v5: Bool) -> String {
        String(cString: v5 ? mosquitto_reason_string(Int32(code)) : mosquitto_connack_string(Int32(code)))
    }

    /// The text of an MQTT 5 reason code (`mosquitto_reason_string`).
    static func reasonString(_ code: Int) -> String {
        String(cString: mosquitto_reason_string(Int32(code)))
    }

    /// Whether a network error ends libmosquitto's loop for good instead of reconnecting
    /// (the list in `mosquitto_loop_forever`).
    static func endsLoop(_ code: Int) -> Bool {
        let fatal: [mosq_err_t] = [
            MOSQ_ERR_NOMEM, MOSQ_ERR_PROTOCOL, MOSQ_ERR_INVAL, MOSQ_ERR_NOT_FOUND, MOSQ_ERR_TLS,
            MOSQ_ERR_PAYLOAD_SIZE, MOSQ_ERR_NOT_SUPPORTED, MOSQ_ERR_AUTH, MOSQ_ERR_ACL_DENIED,
            MOSQ_ERR_UNKNOWN, MOSQ_ERR_EAI, MOSQ_ERR_PROXY,
        ]
        return fatal.contains { Int($0.rawValue) == code }
    }

    // MARK: Callbacks

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> Mosquitto? {
        guard let userdata else { return nil }
        return Unmanaged<Mosquitto>.fromOpaque(userdata).takeUnretainedValue()
    }

    private func deliver(_ event: Event) {
        lock.lock()
        loopThread = pthread_self()
        let handler = self.handler
        lock.unlock()
        handler?(event)
    }

    private func installCallbacks() {
        mosquitto_connect_v5_callback_set(handle) { _, userdata, rc, flags, _ in
            Mosquitto.from(userdata)?.deliver(.connected(code: Int(rc), sessionPresent: flags & 1 != 0))
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, rc, _ in
            Mosquitto.from(userdata)?.deliver(.disconnected(code: Int(rc)))
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reason, _ in
            Mosquitto.from(userdata)?.deliver(.published(mid: mid, reasonCode: Int(reason)))
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            guard let owner = Mosquitto.from(userdata) else { return }
            var codes: [Int] = []
            if let granted, count > 0 {
                codes = UnsafeBufferPointer(start: granted, count: Int(count)).map { Int($0) }
            }
            owner.deliver(.subscribed(mid: mid, grantedQoS: codes))
        }
        mosquitto_unsubscribe_v5_callback_set(handle) { _, userdata, mid, _ in
            Mosquitto.from(userdata)?.deliver(.unsubscribed(mid: mid))
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
            guard let owner = Mosquitto.from(userdata), let message else { return }
            owner.deliver(.message(Mosquitto.copy(message.pointee, properties: properties)))
        }
    }

    // MARK: Conversions

    private static func copy(_ message: mosquitto_message, properties: OpaquePointer?) -> MQTTMessage {
        let topic = message.topic.map { String(cString: $0) } ?? ""
        var payload: [UInt8] = []
        if let bytes = message.payload, message.payloadlen > 0 {
            payload = [UInt8](UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
        }
        return MQTTMessage(
            topic: topic,
            payload: payload,
            qos: Int(message.qos),
            retain: message.retain,
            properties: read(properties)
        )
    }

    /// Reads the PUBLISH properties we know from a received list; the strings and binaries
    /// the read functions allocate are freed here.
    private static func read(_ list: OpaquePointer?) -> MQTTProperties {
        var result = MQTTProperties()
        var cursor = list
        while let property = cursor {
            let identifier = mosquitto_property_identifier(property)
            switch identifier {
            case propResponseTopic, propContentType:
                var value: UnsafeMutablePointer<CChar>?
                if mosquitto_property_read_string(property, identifier, &value, false) != nil, let value {
                    let text = String(cString: value)
                    free(value)
                    if identifier == propResponseTopic { result.responseTopic = text } else { result.contentType = text }
                }
            case propCorrelationData:
                var value: UnsafeMutableRawPointer?
                var length: UInt16 = 0
                if mosquitto_property_read_binary(property, identifier, &value, &length, false) != nil {
                    if let value {
                        result.correlationData = [UInt8](UnsafeRawBufferPointer(start: value, count: Int(length)))
                        free(value)
                    } else {
                        result.correlationData = []
                    }
                }
            case propUserProperty:
                var name: UnsafeMutablePointer<CChar>?
                var value: UnsafeMutablePointer<CChar>?
                if mosquitto_property_read_string_pair(property, identifier, &name, &value, false) != nil {
                    let pair = MQTTUserProperty(
                        name: name.map { String(cString: $0) } ?? "",
                        value: value.map { String(cString: $0) } ?? ""
                    )
                    result.userProperties.append(pair)
                }
                free(name)
                free(value)
            case propMessageExpiry:
                var value: UInt32 = 0
                if mosquitto_property_read_int32(property, identifier, &value, false) != nil {
                    result.messageExpiryInterval = value
                }
            case propPayloadFormat:
                var value: UInt8 = 0
                if mosquitto_property_read_byte(property, identifier, &value, false) != nil {
                    result.payloadFormatIsUTF8 = value == 1
                }
            default:
                break
            }
            cursor = mosquitto_property_next(property)
        }
        return result
    }

    /// Builds a property list for PUBLISH; the caller frees it with `mosquitto_property_free_all`.
    private static func build(_ properties: MQTTProperties, into list: inout OpaquePointer?) -> Int32 {
        var rc = success
        if let topic = properties.responseTopic {
            rc = mosquitto_property_add_string(&list, propResponseTopic, topic)
            if rc != success { return rc }
        }
        if let data = properties.correlationData {
            guard data.count <= Int(UInt16.max) else { return invalid }
            rc = data.withUnsafeBytes { bytes in
                mosquitto_property_add_binary(&list, propCorrelationData, bytes.baseAddress, UInt16(bytes.count))
            }
            if rc != success { return rc }
        }
        if let type = properties.contentType {
            rc = mosquitto_property_add_string(&list, propContentType, type)
            if rc != success { return rc }
        }
        for pair in properties.userProperties {
            rc = mosquitto_property_add_string_pair(&list, propUserProperty, pair.name, pair.value)
            if rc != success { return rc }
        }
        if let expiry = properties.messageExpiryInterval {
            rc = mosquitto_property_add_int32(&list, propMessageExpiry, expiry)
            if rc != success { return rc }
        }
        if let utf8 = properties.payloadFormatIsUTF8 {
            rc = mosquitto_property_add_byte(&list, propPayloadFormat, utf8 ? 1 : 0)
            if rc != success { return rc }
        }
        return rc
    }
}

/// Carries a handle to the thread that frees it (see `Mosquitto.deinit`).
private struct HandleBox: @unchecked Sendable {
    let handle: OpaquePointer
}

private func withOptionalCString<Result>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> Result) -> Result {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
