extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's first element, or with nil when there
    /// is no array (a layer's optional bias, handed to `Activation.apply`).
    @inline(__always)
    package func withBaseAddress<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
