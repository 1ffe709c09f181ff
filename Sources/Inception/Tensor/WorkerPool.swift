import Dispatch
import Foundation
import Synchronization

/// The engine's own threads: the calling thread plus helpers that spin for a
/// short while after each job before they sleep. A layer hands out work many
/// times per image (InceptionV3: a few hundred); waking a sleeping Dispatch
/// worker for each costs 10–20 µs, while a spinning helper starts in well
/// under one. Helpers go to sleep after about 0.2 ms without work, so an idle
/// process uses no CPU.
///
/// One caller at a time: a second thread that calls while the pool is busy
/// (a worker running two inference threads, or a nested loop) gets
/// `false` from `run` and uses Dispatch instead.
final class WorkerPool: @unchecked Sendable {
    // Safe to share: `job` is written only by the caller that holds `busy`,
    // before it publishes the job through `state` (release) and after every
    // helper has reported back through `pending` (acquire).

    /// A helper thread's parking place.
    private final class Helper: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// Job generation << 16 | parts, published together.
    private let state = Atomic<Int>(0)
    /// Helpers still working on the current job.
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private var job: ((Int) -> Void)?
    private var helpers: [Helper] = []
    private let growing = NSLock()

    /// Spins before a helper sleeps (about 0.2 ms).
    private static let spinLimit = 200_000

    static let shared = WorkerPool()

    /// Runs `body(part)` for `part` in `0..<parts` on the caller and
    /// `parts − 1` helpers, and returns when all have finished. Returns false
    /// without running anything if another caller holds the pool.
    func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts > 1, parts < 1 << 16 else { body(0); return true }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        ensureHelpers(parts - 1)
        withoutActuallyEscaping(body) { body in
            job = body
            pending.store(parts - 1, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 16) + 1
            state.store((generation << 16) | parts, ordering: .sequentiallyConsistent)
            for helper in helpers.prefix(parts - 1) where helper.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                helper.wake.signal()
            }
            body(0)
            while pending.load(ordering: .acquiring) != 0 {}
            job = nil
        }
        return true
    }

    /// Starts helpers until there are `count`.
    private func ensureHelpers(_ count: Int) {
        guard helpers.count < count else { return }
        growing.lock()
        defer { growing.unlock() }
        while helpers.count < count {
            let helper = Helper()
            let index = helpers.count + 1
            helpers.append(helper)
            // The helper starts from the current generation: the job about to
            // be published is new to it even if the thread starts late.
            let seen = state.load(ordering: .acquiring)
            let thread = Thread { [unowned self] in self.loop(helper, part: index, seen: seen) }
            thread.name = "conveyor-engine-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs this helper's part of the job; the closure is released before
    /// this returns, so the caller's non-escaping closure ends unshared.
    @inline(never)
    private func perform(_ part: Int) {
        job!(part)
    }

    private func loop(_ helper: Helper, part: Int, seen start: Int) {
        var seen = start
        while true {
            var spins = 0
            var now = state.load(ordering: .acquiring)
            while now == seen {
                spins += 1
                if spins >= Self.spinLimit {
                    helper.sleeping.store(true, ordering: .sequentiallyConsistent)
                    if state.load(ordering: .sequentiallyConsistent) == seen {
                        helper.wake.wait()
                    } else if !helper.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                        // The caller saw us asleep and has signalled: take the signal.
                        helper.wake.wait()
                    }
                    spins = 0
                }
                now = state.load(ordering: .acquiring)
            }
            seen = now
            if part < now & 0xFFFF {
                perform(part)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}
