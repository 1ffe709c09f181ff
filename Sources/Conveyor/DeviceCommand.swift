import ArgumentParser
import Foundation
import Jobs
import MQTT
#if canImport(Glibc)
import Glibc
#endif

/// `conveyor device`: plays one or more production-line cameras against the broker.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Simulate production-line cameras submitting JPEGs over MQTT.",
        discussion: """
            Publishes the JPEGs of --images (in turn) to conveyor/v1/devices/<name>/requests/<model> at a \
            fixed rate, with replies asked for in the device's namespace, prints a progress line every \
            second and ends with latency percentiles, throughput and the counts of answered, failed and \
            unanswered requests. Exits 1 if any request went unanswered.
            """)

    enum Version: String, EnumerableFlag {
        case v5, v311
        static func help(for value: Version) -> ArgumentHelp? {
            value == .v5 ? "MQTT v5: binary JPEG with Response Topic and Correlation Data (default)."
                : "MQTT 3.1.1: JSON request with the image in base64 and a reply_topic."
        }
    }

    @Option(help: "Broker URL: mqtt://host[:port] or mqtts://host[:port].")
    var broker = "mqtt://127.0.0.1:1883"

    @Option(name: .customLong("mqtt-username"), help: "Device account (its namespace is conveyor/v1/devices/<account>/; its client id is the account's name).")
    var username: String?

    @Option(name: .customLong("mqtt-password"), help: "Password of the device account (prefer --mqtt-password-file: a flag shows in `ps`).")
    var password: String?

    @Option(name: .customLong("mqtt-password-file"), help: "File whose first line is the password.")
    var passwordFile: String?

    @Option(name: .customLong("mqtt-ca"), help: "CA certificate to trust for mqtts:// (default: the system's).")
    var cafile: String?

    @Option(help: "Folder of JPEG files to send, in turn.")
    var images: String

    @Option(help: "Requests per second, all cameras together (e.g. 20 or 20/s).")
    var rate: String = "10"

    @Option(help: "Requests to send.")
    var count: Int = 100

    @Option(help: "Cameras (MQTT connections) sharing the account; requests go to them in turn.")
    var cameras: Int = 1

    @Flag var version: Version = .v5

    @Option(help: "Model name of the request topic (as the workers serve it).")
    var model = "inception_v3"

    @Option(help: "Device namespace when connecting without an account (default: the username, else 'sim').")
    var name: String?

    @Option(help: "Classes per answer (default: the workers' default, 5).")
    var topK: Int?

    @Option(help: "Seconds to wait for answers after the last request is sent.")
    var timeout: Double = 30

    @Flag(help: "Print the final report as JSON.")
    var json = false

    func validate() throws {
        guard Self.parseRate(rate) != nil else { throw ValidationError("--rate must be a positive number of requests per second, e.g. 20 or 20/s") }
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard cameras > 0 else { throw ValidationError("--cameras must be positive") }
        if let topK, !(1...1000).contains(topK) { throw ValidationError("--top-k must be from 1 to 1000") }
    }

    static func parseRate(_ text: String) -> Double? {
        let trimmed = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let value = Double(trimmed), value > 0, value.isFinite else { return nil }
        return value
    }

    func run() async throws {
        var config: MQTTConfiguration
        do { config = try MQTTConfiguration(url: broker, clientID: "device") } catch {
            throw ValidationError("bad broker URL \(MQTTConfiguration.redacting(broker)): \(error)")
        }
        config.protocolVersion = version == .v5 ? .v5 : .v311
        config.connectTimeout = .seconds(10)
        if let username {
            config.username = username
            // The broker binds a device account to the client id of its name.
            config.clientID = username
        }
        if let password { config.password = password }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ValidationError("cannot read the password file \(passwordFile)")
            }
            config.password = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let cafile { config.tls = MQTTTLS(caFile: cafile) }
        let deviceName = name ?? config.username ?? "sim"
        guard DeviceNames.isValid(deviceName) else {
            throw ValidationError("device name '\(deviceName)' must be 1-32 characters of [A-Za-z0-9-]")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: images)
            .filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".jpeg") }
            .sorted()
        let jpegs = try files.map { try Data(contentsOf: URL(fileURLWithPath: images).appendingPathComponent($0)) }
        guard !jpegs.isEmpty else { throw ValidationError("no .jpg files in \(images)") }

        let simulator = DeviceSimulator(settings: .init(
            broker: config, name: deviceName, model: model, images: jpegs, rate: Self.parseRate(rate)!, count: count,
            cameras: cameras, topK: topK, drainTimeout: .milliseconds(Int(timeout * 1000))))
        let terminal = isatty(STDERR_FILENO) != 0
        FileHandle.standardError.write(Data((
            "conveyor device: \(cameras) camera(s) as '\(deviceName)' (MQTT \(version == .v5 ? "5" : "3.1.1")), "
            + "\(count) requests at \(rate)/s to \(Topics.deviceRequests(device: deviceName, model: model)), "
            + "\(jpegs.count) image(s)\n").utf8))
        let report = try await simulator.run(progressEvery: .seconds(1)) { line in
            FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(json ? Self.json(report) : Self.text(report))
        if report.unanswered > 0 || report.publishErrors > 0 { throw ExitCode(1) }
    }

    static func text(_ r: DeviceSimulator.Report) -> String {
        var lines = [
            "requests \(r.requests)  sent \(r.sent)  answered \(r.answered) (succeeded \(r.succeeded), failed \(r.failed), expired \(r.expired))  unanswered \(r.unanswered)  publish errors \(r.publishErrors)",
        ]
        if let l = r.latency {
            lines.append(String(format: "latency ms (send to answer)  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f", l.p50, l.p90, l.p99, l.max))
        }
        lines.append(String(format: "throughput %.2f answers/s over %.2f s", r.throughput, r.seconds))
        for reason in r.failureReasons { lines.append("failure: \(reason)") }
        return lines.joined(separator: "\n")
    }

    static func json(_ r: DeviceSimulator.Report) -> String {
        var object: [String: Any] = [
            "requests": r.requests, "sent": r.sent, "answered": r.answered, "succeeded": r.succeeded, "failed": r.failed,
            "expired": r.expired, "unanswered": r.unanswered, "publish_errors": r.publishErrors,
            "seconds": r.seconds, "throughput": r.throughput, "failure_reasons": r.failureReasons,
        ]
        if let l = r.latency {
            object["latency_ms"] = ["p50": l.p50, "p90": l.p90, "p99": l.p99, "max": l.max, "count": l.count]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
