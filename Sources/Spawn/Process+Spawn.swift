import Foundation

extension Process {
    /// Runs the process from a fresh thread with no blocked signals.
    ///
    /// `Process` starts the child with the calling thread's signal mask, and
    /// Swift's concurrency (and test) threads block nearly every signal. A
    /// daemon such as mosquitto started that way keeps SIGTERM blocked, ignores
    /// a polite stop and only dies by SIGKILL.
    public func runWithDefaultSignals() throws {
        final class Launch: @unchecked Sendable {
            // Sendable: written by the launching thread before `done` is
            // signalled, read by the caller only after waiting on it.
            let process: Process
            var error: (any Error)?
            let done = DispatchSemaphore(value: 0)
            init(_ process: Process) { self.process = process }
        }
        let launch = Launch(self)
        let thread = Thread {
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            pthread_sigmask(SIG_SETMASK, &unblocked, nil)
            do {
                try launch.process.run()
            } catch {
                launch.error = error
            }
            launch.done.signal()
        }
        thread.start()
        launch.done.wait()
        if let error = launch.error { throw error }
    }
}
