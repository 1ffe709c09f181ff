import ArgumentParser
import Foundation
import MQTT

/// Reading settings from the environment.
enum Environment {
    /// The variable's value, or nil when it is unset or empty.
    static func string(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}

extension MQTTConfiguration {
    /// A configuration to check option groups against in `validate()`, before anything runs.
    static let validationPlaceholder = MQTTConfiguration(host: "localhost", port: 1883, clientID: "validation")
}

/// One setting from its flag or, failing that, its environment variable. A
/// value that does not parse or is out of range is an error naming the flag or
/// the variable and the value: nothing falls back to the default silently.
enum Setting {
    static func string(_ flag: String?, env: String) -> String? {
        flag ?? Environment.string(env)
    }

    static func int(_ flag: Int?, _ name: String, env: String, in range: ClosedRange<Int>) throws -> Int? {
        if let flag {
            guard range.contains(flag) else { throw ValidationError("--\(name) \(flag): must be \(describe(range))") }
            return flag
        }
        guard let text = Environment.string(env) else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("\(env)=\(text): not an integer")
        }
        guard range.contains(value) else { throw ValidationError("\(env)=\(text): must be \(describe(range))") }
        return value
    }

    static func double(_ flag: Double?, _ name: String, env: String, atLeast minimum: Double = 0) throws -> Double? {
        if let flag {
            guard flag.isFinite, flag >= minimum else { throw ValidationError("--\(name) \(flag): must be a number of at least \(minimum)") }
            return flag
        }
        guard let text = Environment.string(env) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw ValidationError("\(env)=\(text): not a number")
        }
        guard value >= minimum else { throw ValidationError("\(env)=\(text): must be at least \(minimum)") }
        return value
    }

    /// A port: 1–65535, or 0 where `allowZero` (off).
    static func port(_ flag: Int?, _ name: String, env: String, allowZero: Bool = false) throws -> Int? {
        try int(flag, name, env: env, in: (allowZero ? 0 : 1)...65535)
    }

    private static func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == Int.max ? "at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
    }
}
