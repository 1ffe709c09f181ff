/// TLS settings for a connection to the broker.
public struct MQTTTLS: Sendable, Equatable {
    /// PEM file of the certificate authorities to trust. An empty string means "trust the
    /// operating system's CA store" (libmosquitto's `MOSQ_OPT_TLS_USE_OS_CERTS`).
    public var caFile: String
    /// PEM client certificate, for brokers that require client certificates.
    public var certFile: String?
    /// PEM private key matching `certFile`.
    public var keyFile: String?
    /// Accept a server certificate whose host name does not match. Only for testing.
    public var insecureSkipHostnameCheck: Bool = false

    /// Creates TLS settings.
    public init(caFile: String, certFile: String? = nil, keyFile: String? = nil, insecureSkipHostnameCheck: Bool = false) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.insecureSkipHostnameCheck = insecureSkipHostnameCheck
    }
}
