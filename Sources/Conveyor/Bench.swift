import ArgumentParser
import Foundation
import Inception

/// `conveyor bench`: inference speed per batch size.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time inference: ms per batch and per image, images/s and GFLOP/s.")

    @OptionGroup var engine: EngineOptions

    @Option(help: "Batch sizes, comma-separated.")
    var batch: String = "1,4,16"

    @Option(help: "Timed runs per batch size (at least).")
    var runs: Int = 10

    @Option(help: "Keep timing each batch size for at least this many seconds.")
    var seconds: Double = 3

    @Option(help: "Untimed warm-up runs per batch size.")
    var warmup: Int = 2

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "After timing, print where the time goes, by layer kind.")
    var profile = false

    func run() throws {
        let sizes = batch.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError("--batch takes positive sizes, e.g. 1,4,16") }
        Engine.configure(threads: engine.threadCount)
        let path = try engine.modelPath
        let model = try Model(contentsOf: path)
        let session = model.makeSession()
        let kernel = BLASInfo.kernel
        let flops = 2 * Double(model.macsPerImage)
        if !json {
            print("model \(model.name) (\(path)), \(String(format: "%.3f", Double(model.macsPerImage) / 1e9)) GMAC/image")
            print("\(BLASKernel.describe(running: kernel)), \(Engine.threads) threads")
            print("batch   runs   ms/batch min / median / max     ms/image   images/s   GFLOP/s")
        }
        var results: [[String: Any]] = []
        var generator = SplitMix64(seed: 42)
        for size in sizes {
            let input = (0..<(size * model.inputShape.count)).map { _ in Float(generator.nextUnit()) * 2 - 1 }
            var output = [Float](repeating: 0, count: size * model.outputCount)
            var times: [Double] = []
            Self.progress("batch \(size): warming up (\(warmup) run(s))")
            input.withUnsafeBufferPointer { i in
                output.withUnsafeMutableBufferPointer { o in
                    for _ in 0..<warmup { session.run(input: i.baseAddress!, batch: size, output: o.baseAddress!) }
                    let began = DispatchTime.now().uptimeNanoseconds
                    var reported = began
                    while times.count < runs || Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9 < seconds {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        session.run(input: i.baseAddress!, batch: size, output: o.baseAddress!)
                        let t1 = DispatchTime.now().uptimeNanoseconds
                        times.append(Double(t1 - t0) / 1e6)
                        if times.count >= 1000 { break }
                        // A line a second on stderr while a batch size runs: long runs show they are alive.
                        if t1 - reported >= 1_000_000_000 {
                            reported = t1
                            Self.progress(String(format: "batch %d: %d run(s) timed, last %.1f ms", size, times.count, times.last!))
                        }
                    }
                }
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            let perImage = median / Double(size)
            let gflops = flops * Double(size) / (median / 1000) / 1e9
            results.append([
                "batch": size, "runs": times.count,
                "ms_per_batch": ["min": times.first!, "median": median, "max": times.last!],
                "ms_per_image": perImage, "images_per_second": 1000 / perImage, "gflops": gflops,
            ])
            if !json {
                let row = String(format: "%5d  %5d   %8.2f / %8.2f / %8.2f   %8.2f   %8.1f   %7.1f",
                                 size, times.count, times.first!, median, times.last!, perImage, 1000 / perImage, gflops)
                print(row)
                fflush(nil)  // the row now, also when standard output is a pipe
            }
        }
        if profile { printProfile(model: model, session: session, batch: sizes.last!) }
        let rss = Engine.peakResidentBytes.map { Double($0) / 1_048_576 } ?? 0
        if json {
            let report: [String: Any] = [
                "kernel": kernel, "threads": Engine.threads, "model": path, "model_name": model.name,
                "gmac_per_image": Double(model.macsPerImage) / 1e9, "peak_rss_mb": rss, "results": results,
            ]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "peak RSS %.0f MB (activations and workspace for batch %d: %.0f MB)",
                         rss, sizes.last!, Double(session.plannedFloats) * 4 / 1_048_576))
        }
    }
}

extension Bench {
    /// A progress line on standard error (standard output keeps the table or the JSON).
    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
    }

    /// Times each node of a few runs through the session's observe hook.
    func printProfile(model: Model, session: Session, batch size: Int) {
        let kinds = Dictionary(uniqueKeysWithValues: zip(model.layerNames, model.layerKinds))
        var totals: [String: Double] = [:]
        var macs: [String: Int] = [:]
        for (kind, count) in zip(model.layerKinds, model.layerMACs) { macs[kind, default: 0] += count }
        // A group of 1×1 convolutions that read the same input runs as one product, timed at its
        // first member: that member's row counts the whole group's MACs.
        let names = model.layerNames, nodeMACs = model.layerMACs
        var layerMACs = Dictionary(uniqueKeysWithValues: zip(names, nodeMACs))
        var groupSizes: [String: Int] = [:]
        for group in model.graph.groups.values {
            let leader = names[group.members[0]]
            layerMACs[leader] = group.members.reduce(0) { $0 + nodeMACs[$1] }
            for member in group.members.dropFirst() { layerMACs[names[member]] = 0 }
            groupSizes[leader] = group.members.count
        }
        var layerTimes: [String: Double] = [:]
        var layerShapes: [String: String] = [:]
        let input = [Float](repeating: 0.1, count: size * model.inputShape.count)
        var output = [Float](repeating: 0, count: size * model.outputCount)
        let repeats = 3
        for _ in 0..<repeats {
            var last = DispatchTime.now().uptimeNanoseconds
            input.withUnsafeBufferPointer { i in
                output.withUnsafeMutableBufferPointer { o in
                    session.run(input: i.baseAddress!, batch: size, output: o.baseAddress!) { name, view in
                        let now = DispatchTime.now().uptimeNanoseconds
                        let ms = Double(now - last) / 1e6 / Double(repeats)
                        totals[kinds[name] ?? "?", default: 0] += ms
                        layerTimes[name, default: 0] += ms
                        layerShapes[name] = view.shape.description
                        last = now
                    }
                }
            }
        }
        print("profile, batch \(size): by layer kind, ms per run, GMAC per image, GFLOP/s")
        for (kind, ms) in totals.sorted(by: { $0.value > $1.value }) {
            let gmac = Double(macs[kind] ?? 0) / 1e9
            let rate = ms > 0 ? 2 * gmac * Double(size) / (ms / 1e3) : 0
            print("  \(kind.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(format: "%8.2f  %6.3f  %6.1f", ms, gmac, rate))")
        }
        print("slowest layers: ms per run, GMAC per image, GFLOP/s, output shape (a group: the whole group's MACs)")
        for (name, ms) in layerTimes.sorted(by: { $0.value > $1.value }).prefix(20) {
            let gmac = Double(layerMACs[name] ?? 0) / 1e9
            let rate = ms > 0 ? 2 * gmac * Double(size) / (ms / 1e3) : 0
            let group = groupSizes[name].map { ", group of \($0)" } ?? ""
            let label = "\(name) (\(kinds[name] ?? "?")\(group))"
            print("  \(label.padding(toLength: 48, withPad: " ", startingAt: 0)) \(String(format: "%8.2f  %6.3f  %6.1f", ms, gmac, rate))  \(layerShapes[name] ?? "")")
        }
    }
}

