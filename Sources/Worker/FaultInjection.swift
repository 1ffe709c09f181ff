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
/// - `delay<milliseconds>:<prefix>` (e.g. `delay2000:slow-`): the worker waits
///   that long after starting such a job before running it, as a slow machine
///   would; the job then runs normally.
///
/// Job ids from the HTTP ingress are random; a test submits the poisoned
/// request over MQTT with a chosen `job_id`. See docs/reliability.md.
public struct FaultInjection: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case crash, `throw`
        /// Wait this long, then run the job.
        case delay(Duration)
    }

    public var mode: Mode
    public var jobIDPrefix: String

    /// Parses `mode:prefix`; `nil` for anything else.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let name = text[..<colon]
        let prefix = String(text[text.index(after: colon)...])
        guard !prefix.isEmpty else { return nil }
        switch name {
        case "crash": mode = .crash
        case "throw": mode = .throw
        default:
            guard name.hasPrefix("delay"), let ms = Int(name.dropFirst("delay".count)), ms > 0 else { return nil }
            mode = .delay(.milliseconds(ms))
        }
        self.jobIDPrefix = prefix
    }

    /// What the worker's start-up log says it does.
    var summary: String {
        switch mode {
        case .crash: "crash this worker"
        case .throw: "fail with an engine error"
        case .delay(let duration): "wait \(duration) before running"
        }
    }

    func applies(to jobID: String) -> Bool { jobID.hasPrefix(jobIDPrefix) }
}

/// The error an injected `throw` fault raises.
struct InjectedFault: Error, CustomStringConvertible {
    var description: String { "engine error: injected fault (CONVEYOR_FAULT_INJECT)" }
}
