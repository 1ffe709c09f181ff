import CZlib
import Foundation

// Every call into zlib in the project, and every read of raw ZIP bytes, lives
// in this file.

/// A read-only ZIP archive (PKWARE APPNOTE 6.3): the entries its central
/// directory lists, each read whole, stored or deflated, and checked against
/// its CRC-32. Enough for Keras 3's `.keras` files (Python's `zipfile`,
/// stored entries), and for archives re-packed with deflate or ZIP64 records.
/// Encrypted entries, other compression methods and archives split over
/// several disks are refused.
///
/// The file is memory-mapped, not read: a stored entry is handed to the
/// caller in place.
package struct ZipArchive {
    /// One file of the archive, as its central directory describes it.
    package struct Entry: Sendable, Equatable {
        package var name: String
        /// 0: stored, 8: deflated.
        package var method: Int
        package var compressedSize: Int
        package var size: Int
        package var crc32: UInt32
        /// Where the entry's local header starts.
        package var headerOffset: Int
    }

    /// The path the archive was opened from (for messages).
    package let path: String
    /// Entries in central-directory order.
    package let entries: [Entry]
    private let bytes: Data

    /// The largest entry read (a corrupt header can claim any size).
    private static let maximumEntryBytes = 1 << 32

    /// Opens and indexes the archive at `path`.
    ///
    /// - Throws: `ModelError` naming the file when it cannot be read or is not
    ///   a well-formed ZIP archive.
    package init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelError("cannot read \(path): \(error.localizedDescription)")
        }
        try self.init(data: data, path: path)
    }

    /// Indexes an archive held in `data`; `path` names it in messages.
    package init(data: Data, path: String) throws {
        self.path = path
        self.bytes = data
        entries = try data.withUnsafeBytes { raw in try Self.index(Reader(raw, path: path)) }
    }

    /// The entry named `name`, if the archive has one.
    package func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// Calls `body` with the uncompressed bytes of entry `name`, checked
    /// against the entry's size and CRC-32. The bytes are valid only during
    /// the call.
    ///
    /// - Throws: `ModelError` when there is no such entry or it cannot be read.
    package func withContents<T>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard let entry = entry(name) else { throw ModelError("\(path) has no \(name)") }
        return try bytes.withUnsafeBytes { raw in
            let reader = Reader(raw, path: path)
            let what = "\(name) in \(path)"
            // The local header repeats the name and may carry a different extra
            // field; the data follows both.
            let header = entry.headerOffset
            guard try reader.u32(header, what) == 0x0403_4b50 else {
                throw ModelError("\(what): no local header at offset \(header)")
            }
            let start = header + 30 + Int(try reader.u16(header + 26, what)) + Int(try reader.u16(header + 28, what))
            let stored = try reader.slice(start, entry.compressedSize, what)
            switch entry.method {
            case 0:
                guard entry.compressedSize == entry.size else {
                    throw ModelError("\(what) is stored but its sizes differ (\(entry.compressedSize) and \(entry.size) bytes)")
                }
                try Self.check(stored, entry, what)
                return try body(stored)
            case 8:
                let inflated = try Self.inflate(stored, size: entry.size, what)
                return try inflated.withUnsafeBytes { bytes in
                    try Self.check(bytes, entry, what)
                    return try body(bytes)
                }
            default:
                throw ModelError("\(what) uses compression method \(entry.method); only stored (0) and deflated (8) entries are read")
            }
        }
    }

    /// The uncompressed bytes of entry `name`, copied.
    package func contents(of name: String) throws -> [UInt8] {
        try withContents(of: name) { [UInt8]($0) }
    }

    // MARK: - Central directory

    /// Bounds-checked little-endian reads over the archive's bytes.
    private struct Reader {
        let raw: UnsafeRawBufferPointer
        let path: String

        init(_ raw: UnsafeRawBufferPointer, path: String) {
            self.raw = raw
            self.path = path
        }

        var count: Int { raw.count }

        func slice(_ offset: Int, _ length: Int, _ what: String) throws -> UnsafeRawBufferPointer {
            guard offset >= 0, length >= 0, offset <= raw.count, length <= raw.count - offset else {
                throw ModelError("\(what): \(length) bytes at offset \(offset) run past the end of the file (\(raw.count) bytes); is it truncated?")
            }
            return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
        }

        func u16(_ offset: Int, _ what: String) throws -> UInt16 {
            let s = try slice(offset, 2, what)
            return UInt16(s[0]) | UInt16(s[1]) << 8
        }

        func u32(_ offset: Int, _ what: String) throws -> UInt32 {
            let s = try slice(offset, 4, what)
            return (0..<4).reduce(0) { $0 | UInt32(s[$1]) << (8 * $1) }
        }

        func u64(_ offset: Int, _ what: String) throws -> UInt64 {
            let s = try slice(offset, 8, what)
            return (0..<8).reduce(0) { $0 | UInt64(s[$1]) << (8 * $1) }
        }
    }

    /// An offset or size from the archive as an `Int`, refused beyond the file.
    private static func int(_ value: UInt64, within reader: Reader, _ what: String) throws -> Int {
        guard value <= UInt64(reader.count) else {
            throw ModelError("\(what) in \(reader.path) is \(value), beyond the file's \(reader.count) bytes")
        }
        return Int(value)
    }

    private static func index(_ reader: Reader) throws -> [Entry] {
        let path = reader.path
        // The end-of-central-directory record: 22 bytes and a comment of at
        // most 65535 bytes at the end of the file.
        var end: Int?
        if reader.count >= 22 {
            for offset in stride(from: reader.count - 22, through: max(0, reader.count - 22 - 0xFFFF), by: -1)
            where try reader.u32(offset, "end record") == 0x0605_4b50 {
                let comment = Int(try reader.u16(offset + 20, "end record"))
                if offset + 22 + comment == reader.count { end = offset; break }
            }
        }
        guard let end else { throw ModelError("\(path) is not a ZIP archive (no end of central directory record)") }
        guard try reader.u16(end + 4, "end record") == 0, try reader.u16(end + 6, "end record") == 0 else {
            throw ModelError("\(path) is a multi-disk ZIP archive, which is not supported")
        }
        var count = UInt64(try reader.u16(end + 10, "end record"))
        var size = UInt64(try reader.u32(end + 12, "end record"))
        var offset = UInt64(try reader.u32(end + 16, "end record"))
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            // ZIP64: a locator just before the end record points at the ZIP64 end record.
            let locator = end - 20
            guard locator >= 0, try reader.u32(locator, "ZIP64 locator") == 0x0706_4b50 else {
                throw ModelError("\(path): the end record needs ZIP64 values but there is no ZIP64 locator")
            }
            let record = try int(try reader.u64(locator + 8, "ZIP64 locator"), within: reader, "the ZIP64 end record's offset")
            guard try reader.u32(record, "ZIP64 end record") == 0x0606_4b50 else {
                throw ModelError("\(path): no ZIP64 end of central directory record at offset \(record)")
            }
            count = try reader.u64(record + 32, "ZIP64 end record")
            size = try reader.u64(record + 40, "ZIP64 end record")
            offset = try reader.u64(record + 48, "ZIP64 end record")
        }
        var position = try int(offset, within: reader, "the central directory's offset")
        let directoryEnd = position + (try int(size, within: reader, "the central directory's size"))
        guard directoryEnd <= end else {
            throw ModelError("\(path): the central directory (\(size) bytes at \(offset)) overlaps its end record")
        }
        // Each directory entry takes at least 46 bytes.
        guard count <= UInt64(size / 46) else {
            throw ModelError("\(path): \(count) entries cannot fit in a central directory of \(size) bytes")
        }
        var entries: [Entry] = []
        for index in 0..<Int(count) {
            let what = "central directory entry \(index) of \(path)"
            guard try reader.u32(position, what) == 0x0201_4b50 else {
                throw ModelError("\(what): bad signature at offset \(position)")
            }
            let flags = try reader.u16(position + 8, what)
            let method = Int(try reader.u16(position + 10, what))
            let crc = try reader.u32(position + 16, what)
            var compressed = UInt64(try reader.u32(position + 20, what))
            var uncompressed = UInt64(try reader.u32(position + 24, what))
            let nameLength = Int(try reader.u16(position + 28, what))
            let extraLength = Int(try reader.u16(position + 30, what))
            let commentLength = Int(try reader.u16(position + 32, what))
            var header = UInt64(try reader.u32(position + 42, what))
            let name = String(decoding: try reader.slice(position + 46, nameLength, what), as: UTF8.self)
            // ZIP64 extended information: the 64-bit values of the fields saturated above, in this order.
            var extra = position + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try reader.u16(extra, what)
                let length = Int(try reader.u16(extra + 2, what))
                guard extra + 4 + length <= extraEnd else { throw ModelError("\(what) (\(name)): malformed extra field") }
                if id == 0x0001 {
                    var field = extra + 4
                    if uncompressed == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
                        uncompressed = try reader.u64(field, what); field += 8
                    }
                    if compressed == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
                        compressed = try reader.u64(field, what); field += 8
                    }
                    if header == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
                        header = try reader.u64(field, what)
                    }
                }
                extra += 4 + length
            }
            if flags & 1 != 0 { throw ModelError("\(name) in \(path) is encrypted, which is not supported") }
            guard uncompressed <= UInt64(maximumEntryBytes) else {
                throw ModelError("\(name) in \(path) is too large to read (\(uncompressed) bytes)")
            }
            entries.append(Entry(
                name: name, method: method,
                compressedSize: try int(compressed, within: reader, "the compressed size of \(name)"),
                size: Int(uncompressed), crc32: crc,
                headerOffset: try int(header, within: reader, "the local header offset of \(name)")))
            position = extraEnd + commentLength
            guard position <= directoryEnd else {
                throw ModelError("\(what) (\(name)) runs past the end of the central directory")
            }
        }
        return entries
    }

    // MARK: - zlib

    /// Checks `bytes` against the entry's size and CRC-32.
    private static func check(_ bytes: UnsafeRawBufferPointer, _ entry: Entry, _ what: String) throws {
        guard bytes.count == entry.size else {
            throw ModelError("\(what) holds \(bytes.count) bytes; its header says \(entry.size)")
        }
        var crc: UInt = CZlib.crc32(0, nil, 0)
        var done = 0
        while done < bytes.count {
            // crc32 takes a 32-bit length.
            let chunk = min(bytes.count - done, 1 << 30)
            crc = CZlib.crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: Bytef.self) + done, uInt(chunk))
            done += chunk
        }
        guard UInt32(truncatingIfNeeded: crc) == entry.crc32 else {
            throw ModelError("\(what) is corrupt: CRC-32 \(String(crc, radix: 16)), expected \(String(entry.crc32, radix: 16))")
        }
    }

    /// Inflates a raw deflate stream that must produce exactly `size` bytes.
    private static func inflate(_ input: UnsafeRawBufferPointer, size: Int, _ what: String) throws -> [UInt8] {
        var stream = z_stream()
        guard czlib_inflate_init_raw(&stream) == Z_OK else {
            throw ModelError("\(what): zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        // One byte of room beyond `size` shows an entry longer than its header says.
        var output = [UInt8](repeating: 0, count: size + 1)
        var produced = 0
        try output.withUnsafeMutableBytes { out in
            var consumed = 0
            while true {
                let inChunk = min(input.count - consumed, Int(UInt32.max))
                let outChunk = min(out.count - produced, Int(UInt32.max))
                stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) + consumed }
                stream.avail_in = uInt(inChunk)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self) + produced
                stream.avail_out = uInt(outChunk)
                let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                consumed += inChunk - Int(stream.avail_in)
                produced += outChunk - Int(stream.avail_out)
                switch status {
                case Z_STREAM_END:
                    return
                case Z_OK, Z_BUF_ERROR:
                    // Z_BUF_ERROR: no progress was possible.
                    if produced == out.count {
                        throw ModelError("\(what) inflates to more than the \(size) bytes its header says")
                    }
                    if status == Z_BUF_ERROR {
                        throw ModelError("\(what) is truncated: its deflate stream ends early")
                    }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw ModelError("\(what) is corrupt: \(message)")
                }
            }
        }
        guard produced == size else {
            throw ModelError("\(what) inflates to \(produced) bytes; its header says \(size)")
        }
        output.removeLast()
        return output
    }
}
