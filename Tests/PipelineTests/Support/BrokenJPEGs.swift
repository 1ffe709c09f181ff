import Foundation

/// Damaged and odd JPEGs made from a real one, for the bad-input tests.
enum BrokenJPEGs {
    /// Offset of the start-of-scan marker (`FF DA`) of a baseline/progressive JPEG, walking
    /// the marker segments from the start.
    static func startOfScan(_ jpeg: Data) throws -> Int {
        let bytes = [UInt8](jpeg)
        var i = 2
        while i + 3 < bytes.count {
            guard bytes[i] == 0xFF else { throw PipelineError("JPEG marker expected at byte \(i)") }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }
            if marker == 0xDA { return i }
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 2 + length
        }
        throw PipelineError("no start of scan")
    }

    /// Everything before the start of scan: tables and frame header, no image data.
    static func headersOnly(_ jpeg: Data) throws -> Data {
        jpeg.prefix(try startOfScan(jpeg))
    }

    /// The headers, the scan header and `bytes` bytes of entropy-coded data, then nothing.
    static func cutInScan(_ jpeg: Data, after bytes: Int) throws -> Data {
        let sos = try startOfScan(jpeg)
        let length = Int(jpeg[sos + 2]) << 8 | Int(jpeg[sos + 3])
        return jpeg.prefix(sos + 2 + length + bytes)
    }

    /// The headers intact, the entropy-coded data overwritten with seeded pseudo-random bytes
    /// (no `FF`, so no accidental markers), the end marker kept.
    static func scrambledScan(_ jpeg: Data, seed: UInt64 = 42) throws -> Data {
        let sos = try startOfScan(jpeg)
        let length = Int(jpeg[sos + 2]) << 8 | Int(jpeg[sos + 3])
        var bytes = [UInt8](jpeg)
        var state = seed
        for i in (sos + 2 + length)..<(bytes.count - 2) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33) & 0xFE
        }
        return Data(bytes)
    }

    /// The JPEG with `count` APP15 segments of 65,533 filler bytes each inserted after the
    /// SOI marker: a valid file whose headers are `count` × 64 KB.
    static func withGiantHeaders(_ jpeg: Data, segments count: Int) -> Data {
        var segment = Data([0xFF, 0xEF, 0xFF, 0xFF])
        segment.append(Data(repeating: 0x41, count: 65_533))
        var out = jpeg.prefix(2)
        for _ in 0..<count { out.append(segment) }
        out.append(jpeg.dropFirst(2))
        return out
    }

    /// The first bytes of other formats.
    static let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])
    static let gif = Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8)
}
