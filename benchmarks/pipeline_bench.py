#!/usr/bin/env python3
"""End-to-end figures for the Conveyor pipeline (standard library only).

For each worker count it starts `conveyor up` (private mosquitto, result store,
N workers, ingress) on free ports, then:
  1. latency: submits jobs one at a time (POST /predict, then GET /job/{id}?wait=30)
     and reports p50/p99 of submit -> result stored, next to the engine's own
     time for the same job (the worker's inference_ms: decode + resize + model);
  2. throughput: submits --jobs jobs from --clients threads as fast as the ingress
     takes them and reports jobs/s until the last one is stored.
Usage: benchmarks/pipeline_bench.py [--workers 1,2] [--jobs 120] [--latency-jobs 40]
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


def run(args, workers):
    port, mqtt = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="conveyor-bench-")
    threads = max(1, (os.cpu_count() or 2) // workers)
    cmd = [args.binary, "up", "--model", args.model, "--labels", args.labels, "--port", str(port),
           "--mqtt-port", str(mqtt), "--data-dir", data, "--workers", str(workers), "--threads", str(threads),
           "--log-level", "warning"]
    if args.blas_kernel:
        cmd += ["--blas-kernel", args.blas_kernel]
    log = open(os.path.join(data, "up.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if http("GET", base + "/health", timeout=1)[0] == 200:
                    break
            except Exception:
                time.sleep(0.1)
        else:
            raise SystemExit("conveyor up did not start; see " + log.name)
        images = [os.path.join(SHARED, "data/images", f) for f in
                  ["cat.jpg", "coral/cat_720p.jpg", "coral/hot_dog.jpg", "coral/parrot.jpg"]]
        bodies = [json.dumps({"image_data": base64.b64encode(open(p, "rb").read()).decode()}).encode() for p in images]

        def one(i):
            t0 = time.perf_counter()
            status, answer = http("POST", base + "/predict", bodies[i % len(bodies)])
            assert status == 202, answer
            job = answer["job_id"]
            status, record = http("GET", f"{base}/job/{job}?wait=60")
            t1 = time.perf_counter()
            r = record[job]
            assert r["status"] == "succeeded", r
            return (t1 - t0) * 1000, r["timings"].get("inference_ms", 0)

        for i in range(4):
            one(i)  # warm-up
        lat = [one(i) for i in range(args.latency_jobs)]
        e2e = [a for a, _ in lat]
        eng = [b for _, b in lat]

        done = []
        lock = threading.Lock()
        counter = iter(range(args.jobs))

        def client():
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                status, answer = http("POST", base + "/predict", bodies[i % len(bodies)])
                job = answer["job_id"]
                status, record = http("GET", f"{base}/job/{job}?wait=60", timeout=120)
                with lock:
                    done.append(record[job]["status"])

        t0 = time.perf_counter()
        pool = [threading.Thread(target=client) for _ in range(args.clients)]
        [t.start() for t in pool]
        [t.join() for t in pool]
        elapsed = time.perf_counter() - t0
        ok = done.count("succeeded")
        return {
            "workers": workers, "threads_per_worker": threads,
            "e2e_p50_ms": percentile(e2e, 50), "e2e_p99_ms": percentile(e2e, 99),
            "engine_p50_ms": percentile(eng, 50), "engine_p99_ms": percentile(eng, 99),
            "jobs_per_s": ok / elapsed, "succeeded": ok, "jobs": args.jobs,
        }
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


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
    args = p.parse_args()
    results = [run(args, int(w)) for w in args.workers.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    kernel = args.blas_kernel or os.environ.get("OPENBLAS_CORETYPE") or "auto"
    print(f"pipeline, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, OpenBLAS kernel {kernel}")
    print("| workers × threads | submit→stored p50 | p99 | engine p50 | p99 | jobs/s (sustained) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['workers']} × {r['threads_per_worker']} | {r['e2e_p50_ms']:.0f} ms | {r['e2e_p99_ms']:.0f} ms | "
              f"{r['engine_p50_ms']:.0f} ms | {r['engine_p99_ms']:.0f} ms | {r['jobs_per_s']:.1f} ({r['succeeded']}/{r['jobs']}) |")


if __name__ == "__main__":
    main()
