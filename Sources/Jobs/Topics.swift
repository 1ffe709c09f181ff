/// Conveyor's MQTT topic scheme, version 1. The version is part of every
/// topic, so a future incompatible contract can run beside this one.
public enum Topics {
    /// The root of every Conveyor topic.
    public static let root = "conveyor/v1"

    /// Where requests for `model` are published: for its latest version, or
    /// for one version (`…/requests/<model>/<version>`), which only workers
    /// holding that version subscribe to.
    public static func requests(model: String, version: Int64? = nil) -> String {
        version.map { "\(root)/requests/\(model)/\($0)" } ?? "\(root)/requests/\(model)"
    }
    /// Every request topic, versioned or not (the store's ledger subscription).
    public static let allRequests = "\(root)/requests/#"
    /// The shared subscription through which workers split `model`'s requests
    /// (for its latest version, or for one version).
    public static func workerSubscription(model: String, version: Int64? = nil, group: String = "workers") -> String {
        "$share/\(group)/\(requests(model: model, version: version))"
    }

    /// Where the result of job `id` is published (retained: no; QoS 1).
    public static func result(job id: String) -> String { "\(root)/results/\(id)" }
    /// Every job's result topic (the store's subscription).
    public static let allResults = "\(root)/results/+"

    /// Progress events of job `id` (a worker took it).
    public static func event(job id: String) -> String { "\(root)/events/\(id)" }
    public static let allEvents = "\(root)/events/+"

    /// Where a worker announces, retained, what it serves (a TF Serving
    /// `ServableAnnouncement`; emptied when it stops).
    public static func servables(worker id: String) -> String { "\(root)/servables/\(id)" }
    /// Every worker's announcement (what ingresses subscribe to).
    public static let allServables = "\(root)/servables/+"

    /// Where the result store announces each job it cancelled (a
    /// ``JobCancellation``, QoS 1): workers drop it from what they hold and
    /// discard its result if they already started it.
    public static let cancellations = "\(root)/cancellations"

    /// Where a worker reports, every few seconds, the jobs it holds (a
    /// ``WorkerHeartbeat``, QoS 0): the ledger keeps their leases alive.
    public static func workerHeartbeat(worker id: String) -> String { "\(root)/workers/\(id)" }
    public static let allWorkerHeartbeats = "\(root)/workers/+"

    /// The result store's ledger counts (a retained ``LedgerStats``, QoS 0,
    /// every second): the ingress refuses new jobs when too many are queued.
    public static let ledgerStats = "\(root)/store/stats"

    /// Requests to the result store for a job's record (MQTT v5 request/response:
    /// response topic and correlation data on the request).
    public static let storeQuery = "\(root)/store/query"

    /// Where the result store answers one client: its query replies and its
    /// ``LedgerReceipt``s (`conveyor/v1/store/replies/<client id>`).
    public static func storeReply(client id: String) -> String { "\(root)/store/replies/\(id)" }

    /// Whether `topic` is one client's store reply topic (one level under
    /// `conveyor/v1/store/replies/`, no wildcards).
    public static func isStoreReply(_ topic: String) -> Bool {
        let prefix = "\(root)/store/replies/"
        guard topic.hasPrefix(prefix) else { return false }
        let rest = topic.dropFirst(prefix.count)
        return !rest.isEmpty && !rest.contains("/") && !rest.contains("+") && !rest.contains("#")
    }

    /// Why `topic` cannot be a reply topic (a topic name to publish to: 1–65,535
    /// bytes of UTF-8, no `+` or `#` wildcard, no NUL), or nil if it can.
    public static func problem(withReplyTopic topic: String) -> String? {
        if topic.isEmpty { return "reply topic must not be empty" }
        if topic.utf8.count > 65_535 { return "reply topic is over 65535 bytes" }
        if topic.contains("+") || topic.contains("#") { return "reply topic must not contain the wildcards + or #" }
        if topic.utf8.contains(0) { return "reply topic must not contain NUL" }
        return nil
    }

    /// The job id at the end of a results or events topic.
    public static func jobID(fromTopic topic: String) -> String? {
        guard let last = topic.split(separator: "/").last, topic.hasPrefix(root) else { return nil }
        return String(last)
    }

    /// A model name is one topic level and one URL path segment: 1–64
    /// characters of `[A-Za-z0-9_.-]`, not `.` or `..`.
    public static func isValidModelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name != "." && name != ".."
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            }
    }

    /// Why a model name was refused.
    public static let modelNameRule = "model must be 1-64 characters of [A-Za-z0-9_.-]"

    /// The model named by a request topic.
    public static func model(fromRequestTopic topic: String) -> String? {
        requestTarget(fromTopic: topic)?.model
    }

    /// The model and, for a versioned topic, the version a request topic names.
    public static func requestTarget(fromTopic topic: String) -> (model: String, version: Int64?)? {
        let prefix = "\(root)/requests/"
        guard topic.hasPrefix(prefix) else { return nil }
        let parts = topic.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let model = parts.first, !model.isEmpty else { return nil }
        switch parts.count {
        case 1: return (String(model), nil)
        case 2:
            guard let version = Int64(parts[1]), version >= 0 else { return nil }
            return (String(model), version)
        default: return nil
        }
    }
}
