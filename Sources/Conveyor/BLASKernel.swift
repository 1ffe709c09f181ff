import Foundation

/// Chooses the OpenBLAS kernel before OpenBLAS initialises. OpenBLAS reads
/// `OPENBLAS_CORETYPE` once, when the library loads (before `main`), so the
/// launcher sets it and re-executes itself when the choice differs.
///
/// Order: `CONVEYOR_BLAS_KERNEL` (a kernel name, or `auto` to detect from the
/// CPU flags), else a user-set `OPENBLAS_CORETYPE` (kept as it is), else the
/// CPU flags: AVX-512 (F, BW, DQ, VL) → SkylakeX, AVX2+FMA → Haswell.
enum BLASKernel {
    static let marker = "CONVEYOR_BLAS_REEXEC"

    /// The kernel the CPU flags call for, if one is known.
    static func detect(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String? {
        guard let cpuinfo, let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// The kernel to run with, and why. After the launcher's own restart
    /// (`marker` set), `OPENBLAS_CORETYPE` is the launcher's choice, not the
    /// user's, so the reason stays whatever made that choice.
    static func choose(environment env: [String: String]) -> (kernel: String?, reason: String) {
        if let wanted = env["CONVEYOR_BLAS_KERNEL"], !wanted.isEmpty, wanted.lowercased() != "auto" {
            return (wanted, "CONVEYOR_BLAS_KERNEL")
        }
        if env[marker] == nil, env["CONVEYOR_BLAS_KERNEL"]?.lowercased() != "auto",
           let user = env["OPENBLAS_CORETYPE"], !user.isEmpty {
            return (user, "OPENBLAS_CORETYPE set in the environment")
        }
        return (detect(), "CPU flags")
    }

    /// Re-executes the process with `OPENBLAS_CORETYPE` set to the chosen
    /// kernel if it is not already; returns when no restart is needed.
    static func ensure(override: String? = nil) {
        var env = ProcessInfo.processInfo.environment
        if let override { env["CONVEYOR_BLAS_KERNEL"] = override }
        guard env[marker] == nil else { return }
        let (kernel, _) = choose(environment: env)
        guard let kernel, env["OPENBLAS_CORETYPE"] != kernel else { return }
        setenv("OPENBLAS_CORETYPE", kernel, 1)
        setenv(marker, "1", 1)
        if let override { setenv("CONVEYOR_BLAS_KERNEL", override, 1) }
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // exec failed: carry on with whatever OpenBLAS chose.
    }

    /// A sentence for logs: which kernel runs and why.
    static func describe(running: String) -> String {
        let (_, reason) = choose(environment: ProcessInfo.processInfo.environment)
        return "OpenBLAS kernel \(running) (chosen by \(reason))"
    }
}
