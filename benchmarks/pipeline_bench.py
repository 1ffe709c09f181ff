#!/usr/bin/env python3
"""End-to-end figures for the Conveyor pipeline (standard library only).

For each worker count it starts `conveyor up` (private mosquitto, result store,
N workers, ingress) on free ports, then:
  1. latency: submits jobs one at a time (POST /predict, then GET /job/{id}?wait=30)
     and reports p50/p99 of submit -> result stored, next to the engine's own
     time for the same job (the worker's inference_ms: decode + resize + model),
     and where the time goes, hop by hop, from the result's timings;
  2. throughput: submits --jobs jobs from --clients threads as fast as the ingress
     takes them and reports jobs/s until the last one is stored.
With --batching it instead compares saturated throughput of one worker with two
engine threads running each job alone (--max-batch-size 1) and in batches
(--max-batch-size 8). With --unequal it runs a fast worker (inside `conveyor up`,
all cores) beside a slow one (a separate `conveyor worker`, one engine thread,
nice 19), both with --max-batch-size 1 so that each holds one job to run, without
a prefetch bound and with --prefetch 0, and reports jobs/s, p99 submit -> stored
and how many jobs the slow worker ran.
Usage: benchmarks/pipeline_bench.py [--workers 1,2] [--jobs 120] [--latency-jobs 40]
       benchmarks/pipeline_bench.py --batching [--jobs 120]
       benchmarks/pipeline_bench.py --unequal [--jobs 120]
"""
import argparse, base64, json, os, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def start_up(args, workers, threads, extra=()):
    """`conveyor up` on free ports; returns (process, base URL, MQTT port, data folder) once healthy."""
    port, mqtt = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="conveyor-bench-")
    cmd = [args.binary, "up", "--model", args.model, "--labels", args.labels, "--port", str(port),
           "--mqtt-port", str(mqtt), "--data-dir", data, "--workers", str(workers), "--threads", str(threads),
           "--log-level", "warning", *extra]
    if args.blas_kernel:
        cmd += ["--blas-kernel", args.blas_kernel]
    log = open(os.path.join(data, "up.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if http("GET", base + "/health", timeout=1)[0] == 200:
                return proc, base, mqtt, data
        except Exception:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit("conveyor up did not start; see " + log.name)


def stop(proc):
    proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def request_bodies():
    images = [os.path.join(SHARED, "data/images", f) for f in
              ["cat.jpg", "coral/cat_720p.jpg", "coral/hot_dog.jpg", "coral/parrot.jpg"]]
    return [json.dumps({"image_data": base64.b64encode(open(p, "rb").read()).decode()}).encode() for p in images]


def saturate(base, bodies, jobs, clients):
    """Submits `jobs` jobs from `clients` threads, each waiting for its job's result before the
    next; returns succeeded jobs/s, the submit -> stored times (ms), the jobs each worker ran
    and how many succeeded."""
    done, times, by_worker = [], [], {}
    lock = threading.Lock()
    counter = iter(range(jobs))

    def client():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t = time.perf_counter()
            status, answer = http("POST", base + "/predict", bodies[i % len(bodies)])
            job = answer["job_id"]
            status, record = http("GET", f"{base}/job/{job}?wait=60", timeout=120)
            r = record[job]
            with lock:
                done.append(r["status"])
                times.append((time.perf_counter() - t) * 1000)
                by_worker[r.get("worker")] = by_worker.get(r.get("worker"), 0) + 1

    t0 = time.perf_counter()
    pool = [threading.Thread(target=client) for _ in range(clients)]
    [t.start() for t in pool]
    [t.join() for t in pool]
    ok = done.count("succeeded")
    return ok / (time.perf_counter() - t0), times, by_worker, ok


def run_batching(args):
    """Saturated jobs/s of one worker with 2 engine threads, batch 1 against batch 8."""
    results = []
    for size in (1, 8):
        proc, base, _, _ = start_up(args, 1, 2, ["--max-batch-size", str(size)])
        try:
            bodies = request_bodies()
            saturate(base, bodies, 8, 4)  # warm-up
            rate, times, _, _ = saturate(base, bodies, args.jobs, args.clients)
            results.append({"max_batch_size": size, "jobs_per_s": rate, "p50_ms": percentile(times, 50),
                            "p99_ms": percentile(times, 99), "jobs": args.jobs})
        finally:
            stop(proc)
    return results


def run_unequal(args):
    """A fast worker (in `conveyor up`) and a slow one (1 engine thread, nice 19), batches of 1,
    without a prefetch bound and with --prefetch 0 on both."""
    results = []
    for prefetch in (None, 0):
        extra = ["--max-batch-size", "1"] + ([] if prefetch is None else ["--prefetch", str(prefetch)])
        proc, base, mqtt, data = start_up(args, 1, os.cpu_count() or 2, extra)
        slow_log = open(os.path.join(data, "slow-worker.log"), "w")
        slow = subprocess.Popen(["nice", "-n", "19", args.binary, "worker", "--broker", f"mqtt://127.0.0.1:{mqtt}",
                                 "--model", args.model, "--labels", args.labels, "--threads", "1",
                                 "--client-id", "slow-worker", "--log-level", "info", *extra],
                                stdout=slow_log, stderr=subprocess.STDOUT)
        try:
            for _ in range(600):
                if "subscribed to $share/" in open(slow_log.name).read():
                    break
                time.sleep(0.5)
            else:
                raise SystemExit("the slow worker did not start; see " + slow_log.name)
            bodies = request_bodies()
            rate, times, by_worker, _ = saturate(base, bodies, args.jobs, args.clients)
            results.append({"prefetch": "none" if prefetch is None else prefetch, "jobs_per_s": rate,
                            "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
                            "slow_worker_jobs": by_worker.get("slow-worker", 0), "jobs": args.jobs})
        finally:
            stop(slow)
            stop(proc)
    return results


# The hops of one job, from the result's timings (ms since 1970, this machine's clock):
# (name, from, to); "sent" and "answered" are the client's own times.
HOPS = [
    ("submit → accepted", "sent", "queued_at"),
    ("accepted → worker received", "queued_at", "received_at"),
    ("received → decoded", "received_at", "decoded_at"),
    ("decoded → batch started", "decoded_at", "started_at"),
    ("engine (batch)", "started_at", "inferred_at"),
    ("engine end → result made", "inferred_at", "finished_at"),
    ("result made → client has it", "finished_at", "answered"),
]


def hop_times(sent, timings, answered):
    """Each hop's milliseconds for one job (hops whose ends are missing are left out)."""
    points = dict(timings, sent=sent, answered=answered)
    return {name: points[b] - points[a] for name, a, b in HOPS if a in points and b in points}


def run(args, workers):
    threads = max(1, (os.cpu_count() or 2) // workers)
    proc, base, _, _ = start_up(args, workers, threads)
    try:
        bodies = request_bodies()

        def one(i):
            sent = time.time() * 1000
            t0 = time.perf_counter()
            status, answer = http("POST", base + "/predict", bodies[i % len(bodies)])
            assert status == 202, answer
            job = answer["job_id"]
            status, record = http("GET", f"{base}/job/{job}?wait=60")
            t1 = time.perf_counter()
            answered = time.time() * 1000
            r = record[job]
            assert r["status"] == "succeeded", r
            return (t1 - t0) * 1000, r["timings"].get("inference_ms", 0), hop_times(sent, r["timings"], answered)

        for i in range(4):
            one(i)  # warm-up
        lat = [one(i) for i in range(args.latency_jobs)]
        e2e = [a for a, _, _ in lat]
        eng = [b for _, b, _ in lat]
        hops = {name: [h[name] for _, _, h in lat if name in h] for name, _, _ in HOPS}

        rate, _, _, ok = saturate(base, bodies, args.jobs, args.clients)
        return {
            "workers": workers, "threads_per_worker": threads,
            "e2e_p50_ms": percentile(e2e, 50), "e2e_p99_ms": percentile(e2e, 99),
            "engine_p50_ms": percentile(eng, 50), "engine_p99_ms": percentile(eng, 99),
            "jobs_per_s": rate, "succeeded": ok, "jobs": args.jobs,
            "overhead_p50_ms": percentile([a - b for a, b, _ in lat], 50),
            "overhead_p99_ms": percentile([a - b for a, b, _ in lat], 99),
            "hops_p50_ms": {name: percentile(values, 50) for name, values in hops.items() if values},
            "hops_p99_ms": {name: percentile(values, 99) for name, values in hops.items() if values},
        }
    finally:
        stop(proc)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", default="1,2")
    p.add_argument("--jobs", type=int, default=120)
    p.add_argument("--latency-jobs", type=int, default=40)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--binary", default=os.environ.get("CONVEYOR", os.path.join(ROOT, ".build/release/conveyor")))
    p.add_argument("--model", default=os.path.join(SHARED, "models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"))
    p.add_argument("--labels", default=os.path.join(SHARED, "data/image_net_labels.json"))
    p.add_argument("--blas-kernel", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--batching", action="store_true", help="batch 1 against batch 8, one worker with 2 engine threads")
    p.add_argument("--unequal", action="store_true", help="a fast and a slow worker, without and with --prefetch 0")
    args = p.parse_args()
    kernel = args.blas_kernel or os.environ.get("OPENBLAS_CORETYPE") or "auto"
    if args.batching or args.unequal:
        results = run_batching(args) if args.batching else run_unequal(args)
        if args.json:
            print(json.dumps(results, indent=1))
            return
        print(f"pipeline, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, OpenBLAS kernel {kernel}, "
              f"{args.clients} clients")
        if args.batching:
            print("| max batch size (1 worker × 2 threads) | jobs/s (saturated) | submit→stored p50 | p99 |")
            print("| --- | --- | --- | --- |")
            for r in results:
                print(f"| {r['max_batch_size']} | {r['jobs_per_s']:.2f} | {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms |")
        else:
            print("| prefetch (fast + slow worker, batch 1) | jobs/s | submit→stored p50 | p99 | jobs on the slow worker |")
            print("| --- | --- | --- | --- | --- |")
            for r in results:
                print(f"| {r['prefetch']} | {r['jobs_per_s']:.2f} | {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms | "
                      f"{r['slow_worker_jobs']}/{r['jobs']} |")
        return
    results = [run(args, int(w)) for w in args.workers.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"pipeline, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, OpenBLAS kernel {kernel}")
    print("| workers × threads | submit→stored p50 | p99 | engine p50 | p99 | jobs/s (sustained) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['workers']} × {r['threads_per_worker']} | {r['e2e_p50_ms']:.0f} ms | {r['e2e_p99_ms']:.0f} ms | "
              f"{r['engine_p50_ms']:.0f} ms | {r['engine_p99_ms']:.0f} ms | {r['jobs_per_s']:.1f} ({r['succeeded']}/{r['jobs']}) |")
    print("\nOne job at a time, per hop (ms, from the result's timings; 1 ms resolution):")
    print("| hop | " + " | ".join(f"{r['workers']} × {r['threads_per_worker']} p50 / p99" for r in results) + " |")
    print("| --- |" + " --- |" * len(results))
    for name, _, _ in HOPS:
        cells = [f"{r['hops_p50_ms'].get(name, float('nan')):.1f} / {r['hops_p99_ms'].get(name, float('nan')):.1f}" for r in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"{r['overhead_p50_ms']:.1f} / {r['overhead_p99_ms']:.1f}" for r in results]
    print("| whole job minus the worker's inference_ms | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
