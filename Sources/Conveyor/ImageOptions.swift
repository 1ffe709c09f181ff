import ArgumentParser

/// The image size limit, applied by the ingress (from the JPEG header) and by
/// workers (before decoding).
struct ImageOptions: ParsableArguments {
    @Option(help: "Largest image in pixels (env CONVEYOR_MAX_PIXELS; default 40000000).")
    var maxPixels: Int?

    func validate() throws { _ = try maxPixels(default: 0) }

    func maxPixels(default value: Int) throws -> Int {
        try Setting.int(maxPixels, "max-pixels", env: "CONVEYOR_MAX_PIXELS", in: 1...Int.max) ?? value
    }
}
