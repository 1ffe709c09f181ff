import Foundation

/// Wall-clock milliseconds since 1970.
public enum Clock {
    public static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// Shared JSON settings: sorted keys so payloads are stable.
public enum JSONCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
    public static var decoder: JSONDecoder { JSONDecoder() }
}

/// Standard base64, tolerating the line breaks and spaces that `base64` and
/// other tools insert, and missing padding.
public enum Base64 {
    public static func decode(_ text: String) -> Data? {
        var cleaned = text.filter { !$0.isWhitespace }
        guard !cleaned.isEmpty else { return nil }
        // URL-safe alphabet (TF Serving clients send it) maps onto the standard one.
        if cleaned.contains("-") || cleaned.contains("_") {
            cleaned = cleaned.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        }
        let remainder = cleaned.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { cleaned += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: cleaned)
    }
}

/// Job ids: 128 random bits, URL-safe base64 without padding (22 characters).
public enum JobID {
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Ids chosen by clients (devices): 1–64 characters of [A-Za-z0-9_-].
    public static func isValid(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_"
        }
    }
}
