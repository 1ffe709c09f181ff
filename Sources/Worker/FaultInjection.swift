/// Deliberate failures for fault tests, set with the environment variable
/// `CONVEYOR_FAULT_INJECT` (never by a flag, and logged loudly at start):
///
/// - `crash:<prefix>`: the worker process exits at once (status 70, no
///   result, no hand-back), as if the engine had crashed, when it starts a job
///   whose id begins with `<prefix>`.
/// - `throw:<prefix>`: the attempt fails with an engine error for such jobs;
///   the worker hands the job back to the ledger (it is not the request's
///   fault), which delivers it again until it has been tried `max-deliveries`
///   times and then ends it `failed`.
///
/// Job ids from the HTTP ingress are random; a test submits the poisoned
/// request over MQTT with a chosen `job_id`. See docs/reliability.md.
public struct FaultInjection: Sendable, Equatable {
    public enum Mode: String, Sendable {
        case crash, `throw`
    }

    public var mode: Mode
    public var jobIDPrefix: String

    /// Parses `mode:prefix`; `nil` for anything else.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let mode = Mode(rawValue: String(text[..<colon])) else { return nil }
        let prefix = String(text[text.index(after: colon)...])
        guard !prefix.isEmpty else { return nil }
        self.mode = mode
        self.jobIDPrefix = prefix
    }

    func applies(to jobID: String) -> Bool { jobID.hasPrefix(jobIDPrefix) }
}

/// The error an injected `throw` fault raises.
struct InjectedFault: Error, CustomStringConvertible {
    var description: String { "engine error: injected fault (CONVEYOR_FAULT_INJECT)" }
}
