import Jobs

/// Rules for the names clients use: model names become URL path segments and
/// MQTT topic levels, labels follow TF Serving.
public enum ModelName {
    /// 1–64 characters of `[A-Za-z0-9_.-]`: no `/`, `+` or `#`, safe in a
    /// topic and a URL.
    public static func isValid(_ name: String) -> Bool { Topics.isValidModelName(name) }
}

/// TF Serving's rule for version labels: `[a-zA-Z0-9_]+`.
public enum VersionLabel {
    public static func isValid(_ label: String) -> Bool {
        !label.isEmpty && label.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") }
    }
}

private func isAlphanumeric(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
}
