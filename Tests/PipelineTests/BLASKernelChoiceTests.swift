import Foundation
import XCTest

/// The launcher's OpenBLAS kernel choice, seen from outside: `conveyor bench` names the
/// kernel that runs and why, for each way of choosing it.
final class BLASKernelChoiceTests: XCTestCase {
    /// The kernel line `conveyor bench` prints, run with exactly these kernel variables.
    private func kernelLine(_ variables: [String: String]) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        for name in ["OPENBLAS_CORETYPE", "CONVEYOR_BLAS_KERNEL", "CONVEYOR_BLAS_REEXEC"] { environment[name] = nil }
        environment.merge(variables) { $1 }
        let (status, output) = try ProgramRun.run(Paths.binary, [
            "bench", "--model", Paths.model, "--batch", "1", "--runs", "1", "--seconds", "0", "--warmup", "0",
        ], environment: environment)
        XCTAssertEqual(status, 0, output)
        return try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("OpenBLAS kernel ") }.map(String.init), output)
    }

    /// What the CPU flags call for, read here independently of the launcher.
    private var expectedFromFlags: String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " "))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy({ flags.contains(Substring($0)) }) { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// With nothing set, the CPU flags choose, and the log says so: the variable the
    /// launcher sets for its own restart is not taken for the user's.
    func testCPUFlagsChooseWhenNothingIsSet() throws {
        let line = try kernelLine([:])
        XCTAssertTrue(line.contains("(chosen by CPU flags)"), line)
        if let expected = expectedFromFlags {
            XCTAssertTrue(line.hasPrefix("OpenBLAS kernel \(expected) "), line)
        }
    }

    func testUserSetCoreTypeIsKept() throws {
        let line = try kernelLine(["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertTrue(line.hasPrefix("OpenBLAS kernel Haswell (chosen by OPENBLAS_CORETYPE set in the environment)"), line)
    }

    func testConveyorVariableOverridesCoreType() throws {
        let line = try kernelLine(["OPENBLAS_CORETYPE": "Sandybridge", "CONVEYOR_BLAS_KERNEL": "Haswell"])
        XCTAssertTrue(line.hasPrefix("OpenBLAS kernel Haswell (chosen by CONVEYOR_BLAS_KERNEL)"), line)
    }
}
