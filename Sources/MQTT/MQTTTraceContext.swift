import Instrumentation
import ServiceContextModule

/// W3C trace context (`traceparent`, `tracestate`) in a message's MQTT v5
/// user properties, so one job is one trace across the processes it passes
/// through. With no instrument bootstrapped both operations do nothing.
extension MQTTProperties {
    /// Adds the current task's trace context (replacing any it had).
    public mutating func injectTraceContext(_ context: ServiceContext? = .current) {
        guard let context else { return }
        InstrumentationSystem.instrument.inject(context, into: &userProperties, using: UserPropertyInjector())
    }

    /// The trace context the message carries (a top-level context if none).
    public func extractTraceContext() -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(userProperties, into: &context, using: UserPropertyExtractor())
        return context
    }
}

struct UserPropertyInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [MQTTUserProperty]) {
        carrier.removeAll { $0.name == key }
        carrier.append(MQTTUserProperty(name: key, value: value))
    }
}

struct UserPropertyExtractor: Extractor {
    func extract(key: String, from carrier: [MQTTUserProperty]) -> String? {
        carrier.first { $0.name == key }?.value
    }
}
