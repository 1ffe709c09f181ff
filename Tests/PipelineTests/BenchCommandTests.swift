import Foundation
import XCTest

/// `conveyor bench`, run as a program on the fixture InceptionV3: its JSON report is
/// self-consistent and its profile accounts for every multiply-accumulate.
final class BenchCommandTests: XCTestCase {
    /// InceptionV3's convolutions and Dense layer at 299×299: 5.713 GMAC per image.
    private static let inceptionGMAC = 5.713

    func testJSONReportIsConsistent() throws {
        let (status, output) = try ProgramRun.run(Paths.binary, [
            "bench", "--model", Paths.model, "--batch", "1,2", "--runs", "2", "--seconds", "0", "--warmup", "1",
            "--threads", "2", "--json",
        ])
        XCTAssertEqual(status, 0, output)
        // Each batch size says it started, on standard error, before its figures exist.
        XCTAssertTrue(output.contains("bench: batch 1: warming up") && output.contains("bench: batch 2: warming up"), output)
        // Standard error (the log) shares the output: the report is the JSON object in it.
        let start = try XCTUnwrap(output.range(of: "{\n")?.lowerBound, output)
        let end = try XCTUnwrap(output.range(of: "}", options: .backwards)?.upperBound)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output[start..<end].utf8)) as? [String: Any])
        XCTAssertEqual(report["model_name"] as? String, "inception_v3")
        XCTAssertEqual(report["threads"] as? Int, 2)
        XCTAssertFalse((report["kernel"] as? String ?? "").isEmpty)
        XCTAssertGreaterThan(report["peak_rss_mb"] as? Double ?? 0, 50)
        let gmac = try XCTUnwrap(report["gmac_per_image"] as? Double)
        XCTAssertEqual(gmac, Self.inceptionGMAC, accuracy: 0.001)
        let results = try XCTUnwrap(report["results"] as? [[String: Any]])
        XCTAssertEqual(results.compactMap { $0["batch"] as? Int }, [1, 2])
        for result in results {
            let batch = Double(try XCTUnwrap(result["batch"] as? Int))
            XCTAssertGreaterThanOrEqual(result["runs"] as? Int ?? 0, 2)
            let times = try XCTUnwrap(result["ms_per_batch"] as? [String: Double])
            let (low, median, high) = (times["min"] ?? .nan, times["median"] ?? .nan, times["max"] ?? .nan)
            XCTAssertGreaterThan(low, 0)
            XCTAssertLessThanOrEqual(low, median)
            XCTAssertLessThanOrEqual(median, high)
            let perImage = try XCTUnwrap(result["ms_per_image"] as? Double)
            XCTAssertEqual(perImage, median / batch, accuracy: 1e-6 * median)
            XCTAssertEqual(result["images_per_second"] as? Double ?? 0, 1000 / perImage, accuracy: 1e-6 * 1000 / perImage)
            let rate = 2 * gmac * batch / (median / 1000)
            XCTAssertEqual(result["gflops"] as? Double ?? 0, rate, accuracy: 1e-6 * rate)
        }
    }

    func testProfileCountsEveryMACAndWholeGroups() throws {
        let (status, output) = try ProgramRun.run(Paths.binary, [
            "bench", "--model", Paths.model, "--batch", "1", "--runs", "1", "--seconds", "0", "--warmup", "0", "--profile",
        ])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").map(String.init)
        let kindsAt = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("profile, batch 1: by layer kind") }, output)
        let slowestAt = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("slowest layers") }, output)
        XCTAssertLessThan(kindsAt, slowestAt)
        /// The numbers after a row's label: ms, GMAC, GFLOP/s.
        func numbers(_ line: String) -> [Double] {
            line.split(separator: " ").compactMap { Double($0) }
        }
        // Every layer kind's MACs, added up, are the model's.
        let kinds = lines[(kindsAt + 1)..<slowestAt]
        XCTAssertTrue(kinds.contains { $0.contains("Conv2D 1×1/1") }, output)
        let total = kinds.map { numbers($0)[1] }.reduce(0, +)
        XCTAssertEqual(total, Self.inceptionGMAC, accuracy: 0.005, output)
        // A group of parallel 1×1 convolutions is timed as one product on its first member, so
        // that row must count the whole group: more than the first member alone could have.
        // InceptionV3's blocks take at most 288 channels at 35×35, 768 at 17×17 and 2048 at
        // 8×8, so the first member alone is at most pixels × its channels × that many MACs.
        let widestInput = [35: 288, 17: 768, 8: 2048]
        let layers = lines[(slowestAt + 1)...].prefix { $0.hasPrefix("  ") }
        XCTAssertEqual(layers.count, 20, output)
        let groups = layers.filter { $0.contains(", group of ") }
        XCTAssertFalse(groups.isEmpty, output)
        for row in groups {
            let shape = try XCTUnwrap(row.split(separator: " ").last).split(separator: "×").compactMap { Int($0) }
            XCTAssertEqual(shape.count, 3, row)
            guard shape.count == 3 else { continue }
            let inputs = try XCTUnwrap(widestInput[shape[0]], row)
            let alone = Double(shape[0] * shape[1] * shape[2] * inputs) / 1e9
            XCTAssertGreaterThan(numbers(row)[1], alone + 0.001, row)
        }
    }
}
