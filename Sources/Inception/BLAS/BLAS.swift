import COpenBLAS

/// The one place that calls OpenBLAS. Everything is row-major float32.
package enum BLAS {
    /// C[m×n] (leading dimension ldc) = A[m×k] (lda) · B[k×n] (ldb) + beta·C.
    /// With `transposedB`, `b` holds Bᵀ: n rows of k values, `ldb` apart
    /// (weights stored that way stream from memory faster when m is small).
    @inline(__always)
    package static func sgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposedB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        beta: Float = 0
    ) {
        guard m > 0, n > 0, k > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposedB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            1, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Threads OpenBLAS uses for one call.
    package static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// The kernel family OpenBLAS picked when it loaded ("Haswell", "SkylakeX", …).
    package static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration string.
    package static var config: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }
}

/// Information about the BLAS library the engine runs on.
public enum BLASInfo {
    /// The OpenBLAS kernel family in use (chosen when the library loaded).
    public static var kernel: String { BLAS.coreName }
    /// OpenBLAS's own configuration string.
    public static var configuration: String { BLAS.config }
    /// Sets the number of threads OpenBLAS uses.
    public static func setThreads(_ count: Int) { BLAS.threads = count }
    /// The number of threads OpenBLAS uses.
    public static var threads: Int { BLAS.threads }
}
