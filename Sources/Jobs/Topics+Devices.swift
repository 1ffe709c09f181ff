/// The device part of the topic scheme. Each device (one broker account) owns
/// the namespace `conveyor/v1/devices/<device>/`, and the shipped ACL lets it
/// write only `…/<device>/requests/<model>` and read only `…/<device>/replies/#`.
/// Because the broker does not tell a subscriber who published a message, the
/// device's name travels in the request topic (where the ACL's `%u` pins it to
/// the account), and the worker answers only inside that device's namespace.
extension Topics {
    /// Every device's request topics (the result store's ledger subscription).
    public static let allDeviceRequests = "\(root)/devices/+/requests/+"

    /// Where device `device` publishes requests for `model`.
    public static func deviceRequests(device: String, model: String) -> String {
        "\(root)/devices/\(device)/requests/\(model)"
    }

    /// The prefix of every reply topic of `device` (ends with a slash).
    public static func deviceRepliesPrefix(device: String) -> String {
        "\(root)/devices/\(device)/replies/"
    }

    /// The default reply topic of a device's job: `…/<device>/replies/<key>`, where `key`
    /// is the device's own job id (or the hex of its correlation data).
    public static func deviceReply(device: String, key: String) -> String {
        deviceRepliesPrefix(device: device) + key
    }

    /// Where a device's request that cannot be read at all (no job id recoverable) is answered.
    public static func deviceInvalidReply(device: String) -> String {
        deviceRepliesPrefix(device: device) + "invalid"
    }

    /// The shared subscription through which workers split devices' requests for `model`.
    public static func deviceWorkerSubscription(model: String, group: String = "workers") -> String {
        "$share/\(group)/\(root)/devices/+/requests/\(model)"
    }

    /// The device and model named by a device request topic.
    public static func deviceRequest(fromTopic topic: String) -> (device: String, model: String)? {
        let prefix = "\(root)/devices/"
        guard topic.hasPrefix(prefix) else { return nil }
        let parts = topic.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "requests", !parts[0].isEmpty, !parts[2].isEmpty else { return nil }
        return (String(parts[0]), String(parts[2]))
    }
}

/// Names of devices and the job ids their jobs get.
public enum DeviceNames {
    /// A device name (its broker user name): 1–32 characters of `[A-Za-z0-9-]`. No `_`,
    /// so the `_` in a device job id always ends the device name.
    public static func isValid(_ name: String) -> Bool {
        (1...32).contains(name.count) && name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-"
        }
    }

    /// The job id of a device's job: `<device>_<key>`, where `key` is the job id the device
    /// chose (or the hex of its correlation data). The worker and the result store compute it
    /// from the same message, and two devices can never collide.
    public static func jobID(device: String, key: String) -> String { "\(device)_\(key)" }

    /// Lowercase hex of correlation data, used as the key of a v5 request without `job_id`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
