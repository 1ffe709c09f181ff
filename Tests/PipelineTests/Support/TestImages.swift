import Foundation

/// The shared photos and the reference top-5 of each (`ref/manifest.json`: "images" → name → "top5",
/// with "file" relative to `shared/data/images`).
struct ReferenceImage: Sendable {
    /// The manifest's name, e.g. "cat" or "cat_720p".
    var name: String
    /// Relative to `shared/data/images`, e.g. "coral/hot_dog.jpg".
    var file: String
    var top5: [Int]
    var top5Labels: [String]

    var path: String { Paths.images.appendingPathComponent(file).path }
    var data: Data {
        get throws { try Data(contentsOf: URL(fileURLWithPath: path)) }
    }
    var isJPEG: Bool { file.lowercased().hasSuffix(".jpg") || file.lowercased().hasSuffix(".jpeg") }
}

enum TestImages {
    /// Every image of the manifest, in name order.
    static func reference() throws -> [ReferenceImage] {
        let data = try Data(contentsOf: Paths.manifest)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let images = root["images"] as? [String: Any]
        else { throw PipelineError("\(Paths.manifest.path) has no \"images\" object") }
        return try images.keys.sorted().map { name in
            guard let entry = images[name] as? [String: Any], let file = entry["file"] as? String,
                  let top5 = entry["top5"] as? [Int]
            else { throw PipelineError("manifest entry \(name) lacks file or top5") }
            return ReferenceImage(name: name, file: file, top5: top5, top5Labels: entry["top5_labels"] as? [String] ?? [])
        }
    }

    /// Every `*.jpg` in `shared/data/images` and `shared/data/images/coral`, relative paths.
    static func sharedJPEGs() throws -> [String] {
        var files: [String] = []
        for folder in ["", "coral"] {
            let url = folder.isEmpty ? Paths.images : Paths.images.appendingPathComponent(folder)
            for name in try FileManager.default.contentsOfDirectory(atPath: url.path) where name.lowercased().hasSuffix(".jpg") {
                files.append(folder.isEmpty ? name : "\(folder)/\(name)")
            }
        }
        return files.sorted()
    }

    static func contents(_ file: String) throws -> Data {
        try Data(contentsOf: Paths.images.appendingPathComponent(file))
    }

    /// `{"image_data": "<base64>"}`.
    static func predictBody(_ image: Data) -> Data {
        (try? JSONSerialization.data(withJSONObject: ["image_data": image.base64EncodedString()])) ?? Data()
    }

    /// The JPEG with its frame header (SOF0/1/2) claiming `width`×`height` pixels. Walks the
    /// marker segments (FF xx, 2-byte big-endian length) up to the SOF, whose payload is
    /// precision(1), height(2), width(2).
    static func jpeg(_ jpeg: Data, claimingWidth width: Int, height: Int) throws -> Data {
        var bytes = [UInt8](jpeg)
        guard bytes.count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { throw PipelineError("not a JPEG") }
        var i = 2
        while i + 9 < bytes.count {
            guard bytes[i] == 0xFF else { throw PipelineError("JPEG marker expected at byte \(i)") }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if [0xC0, 0xC1, 0xC2].contains(marker) {
                bytes[i + 5] = UInt8(height >> 8); bytes[i + 6] = UInt8(height & 0xFF)
                bytes[i + 7] = UInt8(width >> 8); bytes[i + 8] = UInt8(width & 0xFF)
                return Data(bytes)
            }
            if marker == 0xDA { break }  // start of scan: no frame header before it
            i += 2 + length
        }
        throw PipelineError("no SOF0/1/2 frame header found")
    }
}
