import Foundation
import Inception
import XCTest

/// JPEG decoding, bilinear resizing and model preprocessing, checked against the
/// TensorFlow reference inputs in `shared/models/*/ref/`.
final class ImagePreprocessingTests: XCTestCase {

    // MARK: - Shared data

    /// `<repo root>/../shared`, where the repo root is three levels above this file.
    static let shared: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared")

    /// Reference images: name → path under `shared/data/images/`.
    static let referenceJPEGs: [(name: String, file: String)] = [
        ("cat", "cat.jpg"), ("0000", "0000.jpg"), ("0001", "0001.jpg"), ("0003", "0003.jpg"),
        ("0004", "0004.jpg"), ("0005", "0005.jpg"), ("0006", "0006.jpg"),
        ("cat_720p", "coral/cat_720p.jpg"), ("hot_dog", "coral/hot_dog.jpg"), ("parrot", "coral/parrot.jpg"),
    ]
    static let mobileNetReferenceJPEGs = ["cat": "cat.jpg", "cat_720p": "coral/cat_720p.jpg",
                                          "hot_dog": "coral/hot_dog.jpg", "parrot": "coral/parrot.jpg"]

    private func bytes(_ relativePath: String) throws -> [UInt8] {
        let url = Self.shared.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            XCTFail("missing shared file \(url.path)")
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](data)
    }

    private func image(_ file: String) throws -> [UInt8] { try bytes("data/images/" + file) }

    private func floats(_ relativePath: String) throws -> [Float] {
        let raw = try bytes(relativePath)
        XCTAssertEqual(raw.count % 4, 0)
        return raw.withUnsafeBytes { buffer in
            (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    /// Asserts that `body` throws exactly `expected`.
    private func assertThrows<T>(_ expected: ImageError, file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected \(expected), but it succeeded", file: file, line: line)
        } catch let error as ImageError {
            XCTAssertEqual(error, expected, file: file, line: line)
        } catch {
            XCTFail("expected ImageError, got \(error)", file: file, line: line)
        }
    }

    /// Runs `body`, which must throw an ImageError, and returns that error.
    private func imageError<T>(file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> T) -> ImageError? {
        do {
            _ = try body()
            XCTFail("expected an ImageError, but it succeeded", file: file, line: line)
        } catch let error as ImageError {
            return error
        } catch {
            XCTFail("expected ImageError, got \(error)", file: file, line: line)
        }
        return nil
    }

    // MARK: - Reference inputs

    func testInceptionInputMatchesTensorFlowReference() throws {
        let preprocessor = ImagePreprocessor.inceptionV3
        var worstMean: Double = 0
        for (name, file) in Self.referenceJPEGs {
            let ours = try preprocessor.prepare(image(file))
            let reference = try floats("models/inception_v3/ref/\(name).input.f32")
            XCTAssertEqual(ours.count, 299 * 299 * 3)
            XCTAssertEqual(reference.count, ours.count, name)
            guard reference.count == ours.count else { continue }
            var maxDiff: Float = 0, sum: Double = 0, exact = 0
            for i in 0..<ours.count {
                let d = abs(ours[i] - reference[i])
                maxDiff = max(maxDiff, d)
                sum += Double(d)
                if d == 0 { exact += 1 }
            }
            let mean = sum / Double(ours.count)
            worstMean = max(worstMean, mean)
            print("inception \(name): max abs diff \(maxDiff), mean abs diff \(mean), bit-identical \(exact)/\(ours.count)")
            XCTAssertLessThan(mean, 2e-3, name)
            XCTAssertLessThanOrEqual(maxDiff, 1e-6, "\(name): expected a bit-exact match with TensorFlow")
        }
        print("inception worst mean abs diff: \(worstMean)")
    }

    func testMobileNetQuantizedInputMatchesTFLiteReference() throws {
        let preprocessor = ImagePreprocessor.mobileNetV2
        var totalDiffering = 0, total = 0
        for (name, file) in Self.mobileNetReferenceJPEGs.sorted(by: { $0.key < $1.key }) {
            let ours = try preprocessor.prepare(image(file))
            let reference = try bytes("models/mobilenet_v2/ref/\(name).input.u8")
            XCTAssertEqual(ours.count, 224 * 224 * 3)
            XCTAssertEqual(reference.count, ours.count, name)
            guard reference.count == ours.count else { continue }
            var differing = 0, maxDiff = 0
            for i in 0..<ours.count {
                let qf = ours[i] * 128 + 128    // exact: ours = (q - 128) / 128
                XCTAssertEqual(qf, qf.rounded(), "\(name)[\(i)] is not (q-128)/128")
                let d = abs(Int(qf) - Int(reference[i]))
                if d != 0 { differing += 1 }
                maxDiff = max(maxDiff, d)
            }
            print("mobilenet \(name): \(differing)/\(ours.count) uint8 values differ, max diff \(maxDiff)")
            XCTAssertLessThanOrEqual(maxDiff, 1, name)
            XCTAssertLessThan(Double(differing) / Double(ours.count), 0.001, name)
            totalDiffering += differing
            total += ours.count
        }
        print("mobilenet total: \(totalDiffering)/\(total) differ")
    }

    func testInceptionValuesAreInRange() throws {
        let input = try ImagePreprocessor.inceptionV3.prepare(image("cat.jpg"))
        XCTAssertGreaterThanOrEqual(input.min()!, -1)
        XCTAssertLessThanOrEqual(input.max()!, 1)
    }

    func testDataAndArrayOverloadsAgree() throws {
        let jpeg = try image("coral/hot_dog.jpg")
        let decoder = JPEGDecoder()
        let fromArray = try decoder.decode(jpeg)
        let fromData = try decoder.decode(Data(jpeg))
        XCTAssertEqual(fromArray, fromData)
        XCTAssertEqual(fromArray.width, 512)
        XCTAssertEqual(fromArray.height, 384)
        XCTAssertEqual(fromArray.channels, 3)
        XCTAssertEqual(fromArray.pixels.count, 512 * 384 * 3)
        let header = try decoder.header(jpeg)
        XCTAssertEqual(header.width, 512)
        XCTAssertEqual(header.height, 384)
        XCTAssertEqual(try decoder.header(Data(jpeg)).width, 512)

        let preprocessor = ImagePreprocessor.inceptionV3
        let a = try preprocessor.prepare(jpeg)
        let b = try preprocessor.prepare(Data(jpeg))
        var c = [Float](repeating: .nan, count: preprocessor.elementCount)
        try c.withUnsafeMutableBufferPointer { try preprocessor.prepare(jpeg, into: $0.baseAddress!) }
        XCTAssertEqual(a, b)
        XCTAssertEqual(a, c)
    }

    /// One decoder value shared by concurrent tasks: each call owns its TurboJPEG handle,
    /// and error messages do not leak between calls.
    func testConcurrentDecodingWithSharedDecoder() async throws {
        let good = try image("coral/hot_dog.jpg")
        let truncated = Array(good[..<(good.count / 2)])
        let decoder = JPEGDecoder()
        let expected = try decoder.decode(good)
        let outcomes = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for i in 0..<16 {
                group.addTask {
                    if i % 2 == 0 {
                        return (try? decoder.decode(good)) == expected
                    }
                    do {
                        _ = try decoder.decode(truncated)
                        return false
                    } catch {
                        return (error as? ImageError) == .corrupt("Premature end of JPEG file")
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.count, 16)
        XCTAssertTrue(outcomes.allSatisfy { $0 })
    }

    /// Decoding plus preprocessing a 4032×3024 photo is on the inference hot path.
    func testLargePhotoTiming() throws {
        let jpeg = try image("0000.jpg")
        let preprocessor = ImagePreprocessor.inceptionV3
        var input = [Float](repeating: 0, count: preprocessor.elementCount)
        var best = Double.infinity
        for _ in 0..<3 {
            let start = Date()
            try input.withUnsafeMutableBufferPointer { try preprocessor.prepare(jpeg, into: $0.baseAddress!) }
            best = min(best, Date().timeIntervalSince(start))
        }
        let decodeStart = Date()
        let decoded = try preprocessor.decoder.decode(jpeg)
        let decodeTime = Date().timeIntervalSince(decodeStart)
        let resizeStart = Date()
        input.withUnsafeMutableBufferPointer { preprocessor.prepare(decoded, into: $0.baseAddress!) }
        let resizeTime = Date().timeIntervalSince(resizeStart)
        print(String(format: "4032x3024 JPEG -> 299x299x3 input: best %.1f ms (decode %.1f ms, resize+scale %.2f ms)",
                     best * 1000, decodeTime * 1000, resizeTime * 1000))
    }

    // MARK: - Bad input

    func testEmptyData() {
        assertThrows(.empty) { try JPEGDecoder().decode([UInt8]()) }
        assertThrows(.empty) { try JPEGDecoder().decode(Data()) }
        assertThrows(.empty) { try JPEGDecoder().header([UInt8]()) }
        assertThrows(.empty) { try ImagePreprocessor.inceptionV3.prepare([UInt8]()) }
        XCTAssertEqual(ImageError.empty.description, "empty image data")
    }

    func testRandomBytesAreUnsupported() {
        var rng = SplitMix64(seed: 1)
        let noise = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        XCTAssertNotEqual(noise[0], 0xFF)
        assertThrows(.unsupportedFormat("unknown")) { try JPEGDecoder().decode(noise) }
        assertThrows(.unsupportedFormat("unknown")) { try JPEGDecoder().decode([0xFF]) }
        assertThrows(.unsupportedFormat("unknown")) { try JPEGDecoder().decode([0xD8, 0xFF]) }
    }

    func testMagicBytesAreNamed() {
        let cases: [([UInt8], String)] = [
            (Array("GIF89a....".utf8), "GIF"), (Array("GIF87a".utf8), "GIF"),
            (Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), "WebP"),
            ([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0], "TIFF"), ([0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8], "TIFF"),
            (Array("BM6\u{0}".utf8), "BMP"),
            ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "PNG"),
            (Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVE".utf8), "unknown"),
        ]
        for (data, kind) in cases {
            assertThrows(.unsupportedFormat(kind)) { try JPEGDecoder().decode(data) }
        }
    }

    func testPNGIsUnsupported() throws {
        let png = try bytes("data/mnist/forge_lenet/five.png")
        let error = imageError { try JPEGDecoder().decode(png) }
        XCTAssertEqual(error, .unsupportedFormat("PNG"))
        XCTAssertEqual(error?.description, "unsupported image format: PNG (only JPEG is supported)")
        XCTAssertEqual(imageError { try ImagePreprocessor.leNet.prepare(png) }, .unsupportedFormat("PNG"))
    }

    func testBMPIsUnsupported() throws {
        let bmp = try image("coral/grace_hopper.bmp")
        let error = imageError { try ImagePreprocessor.inceptionV3.prepare(bmp) }
        XCTAssertEqual(error, .unsupportedFormat("BMP"))
        XCTAssertTrue(error?.description.contains("BMP") ?? false)
    }

    func testTruncatedJPEGIsCorrupt() throws {
        let cat = try image("cat.jpg")
        let half = Array(cat[..<(cat.count / 2)])
        guard case .corrupt(let message)? = imageError({ try JPEGDecoder().decode(half) }) else {
            return XCTFail("a truncated JPEG must be .corrupt")
        }
        print("truncated JPEG: \(message)")
        XCTAssertTrue(message.contains("Premature end of JPEG file"), message)
        // The header is intact, so header() still works.
        XCTAssertEqual(try JPEGDecoder().header(half).width, 768)
    }

    /// Every prefix of a JPEG fails cleanly, whatever the cut.
    func testEveryTruncationFails() throws {
        let jpeg = try image("coral/hot_dog.jpg")
        var cuts = [0, 1, 2, 3, 4, 10, 20, 100, 500, 1000, jpeg.count - 2, jpeg.count - 1]
        var rng = SplitMix64(seed: 7)
        for _ in 0..<40 { cuts.append(Int.random(in: 2..<jpeg.count, using: &rng)) }
        for cut in cuts {
            let prefix = Array(jpeg[..<cut])
            let error = imageError { try JPEGDecoder().decode(prefix) }
            switch cut {
            case 0: XCTAssertEqual(error, .empty)
            case 1: XCTAssertEqual(error, .unsupportedFormat("unknown"))
            default:
                guard case .corrupt? = error else { return XCTFail("cut at \(cut): \(String(describing: error))") }
            }
        }
    }

    /// A header claiming 60000×60000 pixels (3.6 G) is refused after reading the header
    /// only. (SOF height and width are 16-bit fields, so 100000 cannot be encoded;
    /// libjpeg's own limit is 65500.)
    func testHugeHeaderIsRefusedBeforeDecoding() throws {
        var jpeg = try image("cat.jpg")
        let sof = try XCTUnwrap(Self.startOfFrameOffset(jpeg), "no SOF marker in cat.jpg")
        // SOFn: FF Cn, length(2), precision(1), height(2), width(2)
        for (i, byte) in [UInt8(60000 >> 8), UInt8(60000 & 0xFF), UInt8(60000 >> 8), UInt8(60000 & 0xFF)].enumerated() {
            jpeg[sof + 5 + i] = byte
        }
        let decoder = JPEGDecoder()
        let header = try decoder.header(jpeg)
        XCTAssertEqual(header.width, 60000)
        XCTAssertEqual(header.height, 60000)
        let start = Date()
        let error = imageError { try decoder.decode(jpeg) }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(error, .tooLarge(width: 60000, height: 60000, limit: 40_000_000))
        XCTAssertEqual(error?.description,
                       "image is 60000×60000 = 3600000000 pixels, over the limit of 40000000 pixels")
        XCTAssertLessThan(elapsed, 0.05, "refusal must not decode or allocate the image")
        XCTAssertEqual(imageError { try ImagePreprocessor.inceptionV3.prepare(jpeg) },
                       .tooLarge(width: 60000, height: 60000, limit: 40_000_000))
    }

    func testCustomPixelLimit() throws {
        let cat = try image("cat.jpg")
        assertThrows(.tooLarge(width: 768, height: 1024, limit: 786_431)) {
            try JPEGDecoder(maxPixels: 786_431).decode(cat)
        }
        XCTAssertEqual(try JPEGDecoder(maxPixels: 786_432).decode(cat).width, 768)
        var preprocessor = ImagePreprocessor(width: 299, height: 299, mode: .inception, maxPixels: 1000)
        assertThrows(.tooLarge(width: 768, height: 1024, limit: 1000)) { try preprocessor.prepare(cat) }
        preprocessor.decoder.maxPixels = 1_000_000
        XCTAssertEqual(try preprocessor.prepare(cat).count, 299 * 299 * 3)
    }

    func testGarbageAfterSOIIsCorrupt() {
        for seed in UInt64(1)...20 {
            var rng = SplitMix64(seed: seed)
            let garbage: [UInt8] = [0xFF, 0xD8] + (0..<2000).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let error = imageError { try JPEGDecoder().decode(garbage) }
            guard case .corrupt(let message)? = error else {
                return XCTFail("seed \(seed): expected .corrupt, got \(String(describing: error))")
            }
            if seed == 1 { print("garbage after SOI: \(message)") }
        }
        assertThrows(.corrupt("JPEG datastream contains no image")) { try JPEGDecoder().decode([0xFF, 0xD8]) }
        assertThrows(.corrupt("JPEG datastream contains no image")) { try JPEGDecoder().header([0xFF, 0xD8, 0xFF, 0xD9]) }
    }

    /// Random byte corruption of a real JPEG never crashes: it decodes or throws ImageError.
    func testCorruptedJPEGsNeverCrash() throws {
        let jpeg = try image("coral/hot_dog.jpg")
        var rng = SplitMix64(seed: 42)
        var decoded = 0, failed = 0
        for iteration in 0..<150 {
            var mutated = jpeg
            let flips = iteration % 3 == 0 ? 1 : Int.random(in: 2...20, using: &rng)
            for _ in 0..<flips {
                // Bias toward the header, where the interesting parsing happens.
                let limit = Bool.random(using: &rng) ? min(700, mutated.count) : mutated.count
                mutated[Int.random(in: 2..<limit, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let image = try JPEGDecoder().decode(mutated)
                XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                decoded += 1
            } catch {
                failed += 1  // typed throws: always an ImageError
            }
        }
        print("corrupted JPEGs: \(decoded) decoded, \(failed) refused")
    }

    // MARK: - Colour spaces

    func testSyntheticGrayscaleJPEG() throws {
        // 16×8 gray image: left block 40, right block 200.
        let jpeg = FlatJPEG.make(width: 16, height: 8, blocks: [[40, 200]])
        let rgb = try JPEGDecoder().decode(jpeg)
        XCTAssertEqual(rgb.channels, 3)
        XCTAssertEqual(rgb.width, 16)
        XCTAssertEqual(rgb.height, 8)
        for y in 0..<8 {
            for x in 0..<16 {
                let v: UInt8 = x < 8 ? 40 : 200
                XCTAssertEqual(Array(rgb.pixels[(y * 16 + x) * 3 ..< (y * 16 + x) * 3 + 3]), [v, v, v])
            }
        }
        let gray = try JPEGDecoder().decode(jpeg, channels: 1)
        XCTAssertEqual(gray.channels, 1)
        XCTAssertEqual(gray.pixels, (0..<8).flatMap { _ in [UInt8](repeating: 40, count: 8) + [UInt8](repeating: 200, count: 8) })
    }

    /// A real grayscale JPEG (cat.jpg with its chroma dropped losslessly by `jpegtran
    /// -grayscale`) decodes to 3 equal channels, equal to cat.jpg's luminance.
    func testGrayscaleJPEGFromJpegtran() throws {
        let catPath = Self.shared.appendingPathComponent("data/images/cat.jpg").path
        let gray = try Self.run("jpegtran", ["-grayscale", catPath])
        XCTAssertGreaterThan(gray.count, 1000)
        let rgb = try JPEGDecoder().decode(gray)
        XCTAssertEqual(rgb.channels, 3)
        XCTAssertEqual(rgb.width, 768)
        XCTAssertEqual(rgb.height, 1024)
        let luma = try JPEGDecoder().decode(image("cat.jpg"), channels: 1)
        XCTAssertEqual(luma.channels, 1)
        var mismatches = 0
        for i in 0..<(768 * 1024) {
            let r = rgb.pixels[3 * i], g = rgb.pixels[3 * i + 1], b = rgb.pixels[3 * i + 2]
            if r != g || g != b || r != luma.pixels[i] { mismatches += 1 }
        }
        XCTAssertEqual(mismatches, 0)
        let input = try ImagePreprocessor.inceptionV3.prepare(gray)
        XCTAssertEqual(input.count, 299 * 299 * 3)
    }

    /// Chroma sampling that matches none of TurboJPEG's presets (Y sampled 3×1): TurboJPEG
    /// 2.1's header call refuses it, but libjpeg decodes it, and so must we. Checked against
    /// libjpeg's own `djpeg` (accurate integer IDCT and fancy upsampling are its defaults).
    func testUnusualChromaSamplingMatchesDjpeg() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ImagePreprocessingTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let hotDog = Self.shared.appendingPathComponent("data/images/coral/hot_dog.jpg").path
        let ppm = directory.appendingPathComponent("hot_dog.ppm")
        try Data(Self.run("djpeg", ["-ppm", hotDog])).write(to: ppm)
        let odd = directory.appendingPathComponent("odd.jpg")
        try Data(Self.run("cjpeg", ["-sample", "3x1,1x1,1x1", ppm.path])).write(to: odd)

        let jpeg = [UInt8](try Data(contentsOf: odd))
        let ours = try JPEGDecoder().decode(jpeg)
        XCTAssertEqual(try JPEGDecoder().header(jpeg).width, 512)
        let reference = try Self.run("djpeg", ["-ppm", odd.path])
        let header = Array("P6\n512 384\n255\n".utf8)
        XCTAssertEqual(Array(reference.prefix(header.count)), header)
        XCTAssertEqual(Array(reference.dropFirst(header.count)), ours.pixels)
    }

    /// The reference photos decode exactly as libjpeg's `djpeg` decodes them.
    func testDecodingMatchesDjpeg() throws {
        for file in ["cat.jpg", "coral/parrot.jpg"] {
            let path = Self.shared.appendingPathComponent("data/images/" + file).path
            let ours = try JPEGDecoder().decode(image(file))
            let reference = try Self.run("djpeg", ["-ppm", "-dct", "int", path])
            let header = Array("P6\n\(ours.width) \(ours.height)\n255\n".utf8)
            XCTAssertEqual(Array(reference.prefix(header.count)), header, file)
            XCTAssertTrue(Array(reference.dropFirst(header.count)) == ours.pixels, file)
        }
    }

    /// Adobe CMYK (inverted, as Photoshop and libjpeg write it): R = C*K/255 etc., like TF.
    func testAdobeCMYKJPEG() throws {
        let c: UInt8 = 200, m: UInt8 = 100, y: UInt8 = 50
        let jpeg = FlatJPEG.make(width: 16, height: 8, blocks: [[c, c], [m, m], [y, y], [255, 128]], adobeTransform: 0)
        let image = try JPEGDecoder().decode(jpeg)
        XCTAssertEqual(image.channels, 3)
        XCTAssertEqual(image.pixels.count, 16 * 8 * 3)
        XCTAssertEqual(Array(image.pixels[0..<3]), [200, 100, 50])                       // K = 255
        XCTAssertEqual(Array(image.pixels[8 * 3 ..< 8 * 3 + 3]), [100, 50, 25])          // K = 128: 200*128/255 = 100
        let gray = try JPEGDecoder().decode(jpeg, channels: 1)
        XCTAssertEqual(gray.channels, 1)
        let luma: Int = (19595 * 200 + 38470 * 100 + 7471 * 50 + 32768) >> 16  // libjpeg's weights
        XCTAssertEqual(Int(gray.pixels[0]), luma)
    }

    /// CMYK without an Adobe marker: R = (255-C)*(255-K)/255 etc., like TF.
    func testPlainCMYKJPEG() throws {
        let jpeg = FlatJPEG.make(width: 8, height: 8, blocks: [[55], [155], [205], [100]])
        let image = try JPEGDecoder().decode(jpeg)
        XCTAssertEqual(image.channels, 3)
        let expected = [55, 155, 205].map { UInt8((255 - $0) * (255 - 100) / 255) }
        XCTAssertEqual(Array(image.pixels[0..<3]), expected)
        XCTAssertEqual(image.pixels.count, 8 * 8 * 3)
    }

    /// YCCK (Adobe transform 2): libjpeg turns Y=v, Cb=Cr=128 into C=M=Y=255-v.
    func testYCCKJPEG() throws {
        let jpeg = FlatJPEG.make(width: 8, height: 8, blocks: [[180], [128], [128], [200]], adobeTransform: 2)
        let image = try JPEGDecoder().decode(jpeg)
        let v = UInt8(200 * (255 - 180) / 255)
        XCTAssertEqual(Array(image.pixels[0..<3]), [v, v, v])
    }

    /// LeNet's path: grayscale decode, 28×28 → 28×28 resize is the identity, values 0…255.
    func testLeNetRawGrayscale() throws {
        // 28×28 image made of 4×4 flat 8×8 blocks (the last row/column cropped to 4 pixels).
        let values: [UInt8] = (0..<16).map { UInt8($0 * 16 + 5) }
        let jpeg = FlatJPEG.make(width: 28, height: 28, blocks: [values])
        let input = try ImagePreprocessor.leNet.prepare(jpeg)
        XCTAssertEqual(input.count, 28 * 28)
        for y in 0..<28 {
            for x in 0..<28 {
                XCTAssertEqual(input[y * 28 + x], Float(values[(y / 8) * 4 + x / 8]))
            }
        }
    }

    // MARK: - Resize

    /// 3×2 → 5×4, hand-computed. Source rows [0, 100, 200] and [50, 150, 250].
    /// x: scale 0.6, source x = -0.2, 0.4, 1.0, 1.6, 2.2 → clamp 0, 0..1 @0.4, 1, 1..2 @0.6, clamp 2.
    /// y: scale 0.5, source y = -0.25, 0.25, 0.75, 1.25 → clamp 0, 0..1 @0.25, 0..1 @0.75, clamp 1.
    func testResizeTinyImageByHand() {
        let image = DecodedImage(width: 3, height: 2, channels: 1, pixels: [0, 100, 200, 50, 150, 250])
        let out = resizeBilinear(image, toWidth: 5, height: 4)
        let expected: [Float] = [
            0, 40, 100, 160, 200,
            12.5, 52.5, 112.5, 172.5, 212.5,
            37.5, 77.5, 137.5, 197.5, 237.5,
            50, 90, 150, 210, 250,
        ]
        XCTAssertEqual(out.count, expected.count)
        for i in 0..<expected.count {
            XCTAssertEqual(out[i], expected[i], accuracy: 1e-4, "index \(i)")
        }

        // The same in 3 interleaved channels: (v, 255 - v, 7).
        let rgb = DecodedImage(width: 3, height: 2, channels: 3,
                               pixels: image.pixels.flatMap { [$0, 255 - $0, 7] })
        let outRGB = resizeBilinear(rgb, toWidth: 5, height: 4)
        XCTAssertEqual(outRGB.count, 60)
        for i in 0..<expected.count {
            XCTAssertEqual(outRGB[3 * i], expected[i], accuracy: 1e-4)
            XCTAssertEqual(outRGB[3 * i + 1], 255 - expected[i], accuracy: 1e-4)
            XCTAssertEqual(outRGB[3 * i + 2], 7)
        }

        // Affine post-transform and input divisor: y = (x / 255) * 2 - 1.
        var fused = [Float](repeating: .nan, count: 20)
        fused.withUnsafeMutableBufferPointer {
            resizeBilinear(image, toWidth: 5, height: 4, into: $0.baseAddress!, inputDivisor: 255, scale: 2, offset: -1)
        }
        for i in 0..<expected.count {
            XCTAssertEqual(fused[i], expected[i] / 255 * 2 - 1, accuracy: 1e-6)
        }
    }

    func testResizeToSameSizeIsExact() {
        var rng = SplitMix64(seed: 3)
        let pixels = (0..<(7 * 5 * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let image = DecodedImage(width: 7, height: 5, channels: 3, pixels: pixels)
        XCTAssertEqual(resizeBilinear(image, toWidth: 7, height: 5), pixels.map(Float.init))
        // Channel counts other than 1 and 3 take the generic path.
        let five = DecodedImage(width: 7, height: 3, channels: 5, pixels: Array(pixels[..<(7 * 3 * 5)]))
        XCTAssertEqual(resizeBilinear(five, toWidth: 7, height: 3), five.pixels.map(Float.init))
    }

    func testResizeDownAndUpStaysInRange() {
        var rng = SplitMix64(seed: 5)
        let pixels = (0..<(97 * 61 * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let image = DecodedImage(width: 97, height: 61, channels: 3, pixels: pixels)
        for (w, h) in [(299, 299), (13, 9), (1, 1), (97, 1)] {
            let out = resizeBilinear(image, toWidth: w, height: h)
            XCTAssertEqual(out.count, w * h * 3)
            XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 <= 255 })
        }
    }

    func testPreprocessingModes() {
        XCTAssertEqual(Preprocessing.allCases, [.inception, .mobilenet, .raw])
        XCTAssertEqual(Preprocessing(rawValue: "mobilenet"), .mobilenet)
        let image = DecodedImage(width: 2, height: 1, channels: 1, pixels: [0, 255])
        let same = { (mode: Preprocessing) in
            ImagePreprocessor(width: 2, height: 1, channels: 1, mode: mode).prepare(image)
        }
        XCTAssertEqual(same(.inception), [-1, 1])
        XCTAssertEqual(same(.mobilenet), [-1, 127.0 / 128])
        XCTAssertEqual(same(.raw), [0, 255])
        // Round half to even: 2×1 → 4×1 gives 0, 63.75... use a case with exact .5.
        let half = DecodedImage(width: 2, height: 1, channels: 1, pixels: [1, 2])
        // Source x for 3 outputs from 2: scale 2/3, x = -1/6, 0.5, 7/6 → 1, 1.5, 2.
        let q = ImagePreprocessor(width: 3, height: 1, channels: 1, mode: .mobilenet).prepare(half)
        XCTAssertEqual(q.map { $0 * 128 + 128 }, [1, 2, 2])  // 1.5 rounds to 2 (even)
        let half2 = DecodedImage(width: 2, height: 1, channels: 1, pixels: [2, 3])
        let q2 = ImagePreprocessor(width: 3, height: 1, channels: 1, mode: .mobilenet).prepare(half2)
        XCTAssertEqual(q2.map { $0 * 128 + 128 }, [2, 2, 3])  // 2.5 rounds to 2 (even)
    }

    // MARK: - Helpers

    /// Offset of the first SOFn marker (FF C0…CF except C4, C8, CC) in a JPEG.
    static func startOfFrameOffset(_ jpeg: [UInt8]) -> Int? {
        var i = 2
        while i + 3 < jpeg.count {
            guard jpeg[i] == 0xFF else { return nil }
            let marker = jpeg[i + 1]
            if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) { return i }
            i += 2 + (Int(jpeg[i + 2]) << 8 | Int(jpeg[i + 3]))
        }
        return nil
    }

    /// Runs a command-line tool found on PATH and returns its standard output. Fails (does
    /// not skip) when the tool is missing.
    static func run(_ tool: String, _ arguments: [String]) throws -> [UInt8] {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            .split(separator: ":").map { "\($0)/\(tool)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else {
            XCTFail("`\(tool)` is not installed; it comes with Debian's libjpeg-turbo-progs (apt-get install libjpeg-turbo-progs)")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(tool) \(arguments) failed")
        return [UInt8](data)
    }
}

/// A minimal baseline JPEG writer for test images made of flat 8×8 blocks, so that the
/// decoded values are known exactly: every block holds only a DC coefficient, with
/// quantizer 8, and libjpeg's accurate integer IDCT turns DC = v - 128 into exactly v.
/// Components are not subsampled. Needs no external tool and no libturbojpeg call.
private enum FlatJPEG {
    /// - Parameters:
    ///   - blocks: per component, one value per 8×8 block in raster order
    ///     (`ceil(width/8) * ceil(height/8)` values). 1 component = grayscale,
    ///     4 = CMYK (or YCCK with `adobeTransform: 2`).
    ///   - adobeTransform: when set, an Adobe APP14 marker with this transform
    ///     (0 = CMYK/RGB as stored, 1 = YCbCr, 2 = YCCK) is written.
    static func make(width: Int, height: Int, blocks: [[UInt8]], adobeTransform: UInt8? = nil) -> [UInt8] {
        let n = blocks.count
        let blocksPerRow = (width + 7) / 8, blockRows = (height + 7) / 8
        precondition(blocks.allSatisfy { $0.count == blocksPerRow * blockRows })
        var out: [UInt8] = [0xFF, 0xD8]
        func segment(_ marker: UInt8, _ body: [UInt8]) {
            out += [0xFF, marker, UInt8((body.count + 2) >> 8), UInt8((body.count + 2) & 0xFF)] + body
        }
        if let transform = adobeTransform {
            segment(0xEE, Array("Adobe".utf8) + [0, 100, 0, 0, 0, 0, transform])
        }
        segment(0xDB, [0x00] + [UInt8](repeating: 8, count: 64))                    // DQT 0: all 8
        segment(0xC0, [8, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF), UInt8(n)]
                    + (0..<n).flatMap { [UInt8($0 + 1), 0x11, 0] })                 // SOF0
        // DC table 0: categories 0…11, all 4-bit codes (code = category). AC table 0: EOB = "0".
        segment(0xC4, [0x00, 0, 0, 0, 12] + [UInt8](repeating: 0, count: 12) + (0..<12).map { UInt8($0) }
                    + [0x10, 1] + [UInt8](repeating: 0, count: 15) + [0x00])
        segment(0xDA, [UInt8(n)] + (0..<n).flatMap { [UInt8($0 + 1), 0x00] } + [0, 63, 0])  // SOS

        var writer = BitWriter()
        var previousDC = [Int](repeating: 0, count: n)
        for block in 0..<(blocksPerRow * blockRows) {
            for component in 0..<n {
                let dc = Int(blocks[component][block]) - 128
                let diff = dc - previousDC[component]
                previousDC[component] = dc
                let size = diff == 0 ? 0 : (Int.bitWidth - abs(diff).leadingZeroBitCount)
                writer.write(size, bits: 4)
                if size > 0 { writer.write(diff >= 0 ? diff : diff + (1 << size) - 1, bits: size) }
                writer.write(0, bits: 1)  // EOB
            }
        }
        out += writer.finish()
        out += [0xFF, 0xD9]
        return out
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var accumulator = 0
        var count = 0
        mutating func write(_ value: Int, bits: Int) {
            for i in stride(from: bits - 1, through: 0, by: -1) {
                accumulator = accumulator << 1 | (value >> i & 1)
                count += 1
                if count == 8 { flushByte() }
            }
        }
        private mutating func flushByte() {
            let byte = UInt8(accumulator & 0xFF)
            bytes.append(byte)
            if byte == 0xFF { bytes.append(0x00) }  // byte stuffing
            accumulator = 0
            count = 0
        }
        mutating func finish() -> [UInt8] {
            while count != 0 { write(1, bits: 1) }  // pad with 1 bits
            return bytes
        }
    }
}
