#!/usr/bin/env python3
"""Soak and load test for Conveyor's delivery promise (standard library only; not in CI).

Starts its own deployment on free loopback ports, as separate processes it can kill:
a private mosquitto with persistence on, `conveyor store`, N `conveyor worker`s and
`conveyor ingress`. Then it submits --jobs jobs at --rate jobs/s over HTTP (POST /predict;
a 503/429 is retried after its Retry-After, so every job is eventually accepted), while
  * every --kill-every seconds (randomised +-50%) a random worker is SIGKILLed and started
    again --restart-after seconds later;
  * once, at --broker-restart-at of the submissions, the broker is stopped (SIGTERM) and
    started again on the same port and persistence file;
  * once, at --store-crash-loop-at, the store crash-loops: it is SIGKILLed, started again
    and SIGKILLed again 0-200 ms after it logs "result store running", --store-kills times,
    then started for good;
  * once, at --broker-kill-at, the store is SIGKILLed and, while it is down, the broker is
    SIGKILLed too (no clean save of its persistence); then both are started again.
It prints progress every 5 s and ends with the count of jobs per terminal state (asking
the store through GET /job/{id}), lost = accepted - terminal (must be 0) and the latency
percentiles (accepted -> finished_at). Exit status 1 if anything was lost.

Usage: benchmarks/soak.py [--jobs 10000] [--rate 20] [--workers 2] [--binary .build/debug/conveyor]
       [--model ../shared/models/mobilenet_v2/mobilenet_v2_1.0_224.h5] [--lease 10]
"""
import argparse, base64, json, os, random, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
TERMINAL = ("succeeded", "failed", "expired")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, timeout=90):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        try:
            payload = json.loads(e.read() or b"{}")
        except ValueError:
            payload = {}
        return e.code, payload, dict(e.headers)
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
        return 0, {"error": str(e)}, {}


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Service:
    """One child process, logging to a file; stopped and killed by PID."""

    def __init__(self, name, cmd, logdir):
        self.name, self.cmd, self.proc = name, cmd, None
        self.log = open(os.path.join(logdir, name + ".log"), "ab")

    def start(self):
        self.log.write(f"==== {time.strftime('%H:%M:%S')} starting {' '.join(self.cmd)}\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace=10):
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_port(port, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_log(path, text, seconds=120, offset=0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(path, "rb") as f:
            f.seek(offset)
            if text.encode() in f.read():
                return True
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=20.0, help="jobs submitted per second")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "conveyor"))
    ap.add_argument("--model", default=os.path.join(SHARED, "models/mobilenet_v2/mobilenet_v2_1.0_224.h5"))
    ap.add_argument("--labels", default=os.path.join(SHARED, "models/mobilenet_v2/labels.txt"))
    ap.add_argument("--images", default="cat.jpg,coral/cat_720p.jpg,coral/hot_dog.jpg",
                    help="comma-separated, relative to ../shared/data/images")
    ap.add_argument("--lease", type=float, default=10.0, help="store --lease-seconds")
    ap.add_argument("--kill-every", type=float, default=30.0, help="seconds between worker kills (0: none)")
    ap.add_argument("--restart-after", type=float, default=2.0, help="seconds before a killed worker is restarted")
    ap.add_argument("--broker-restart-at", type=float, default=0.5, help="fraction of submissions (negative: never)")
    ap.add_argument("--store-crash-loop-at", type=float, default=0.25, help="fraction of submissions (negative: never)")
    ap.add_argument("--store-kills", type=int, default=3, help="SIGKILLs of the store in its crash loop")
    ap.add_argument("--broker-kill-at", type=float, default=0.75, help="fraction of submissions (negative: never)")
    ap.add_argument("--senders", type=int, default=8, help="HTTP client threads")
    ap.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for the last jobs")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = ap.parse_args()
    # SIGTERM stops the run like Ctrl-C: the finally clause stops every child process.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rng = random.Random(args.seed)

    images = []
    for name in args.images.split(","):
        with open(os.path.join(SHARED, "data/images", name), "rb") as f:
            images.append(json.dumps({"image_data": base64.b64encode(f.read()).decode()}).encode())

    data = tempfile.mkdtemp(prefix="conveyor-soak-")
    mqtt_port, http_port = free_port(), free_port()
    conf = os.path.join(data, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence true\n"
                f"persistence_location {data}/\nautosave_interval 5\nmax_queued_messages 10000\n"
                f"message_size_limit 16777216\nlog_dest stderr\nlog_type error\nlog_type warning\n"
                + ("user root\n" if os.getuid() == 0 else ""))
    broker = Service("mosquitto", ["/usr/sbin/mosquitto", "-c", conf], data)
    common = ["--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--log-level", "info"]
    model = ["--model", args.model, "--labels", args.labels, "--model-name", "soak"]
    env_threads = str(max(1, (os.cpu_count() or 2) // args.workers))
    store = Service("store", [args.binary, "store"] + common + [
        "--database", os.path.join(data, "jobs.sqlite"), "--lease-seconds", str(args.lease)], data)
    workers = [Service(f"worker-{i}", [args.binary, "worker"] + common + model + [
        "--client-id", f"soak-worker-{i}", "--threads", env_threads, "--heartbeat-seconds", "2"], data)
        for i in range(args.workers)]
    ingress = Service("ingress", [args.binary, "ingress"] + common + [
        "--model-name", "soak", "--host", "127.0.0.1", "--port", str(http_port), "--client-id", "soak-ingress"], data)
    everything = [ingress] + workers + [store, broker]
    base = f"http://127.0.0.1:{http_port}"

    state = {"accepted": {}, "refused": 0, "errors": 0, "kills": 0, "broker_restarts": 0,
             "store_kills": 0, "broker_kills": 0}
    lock = threading.Lock()
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f} s] {msg}", flush=True)

    try:
        broker.start()
        if not wait_port(mqtt_port):
            sys.exit("mosquitto did not start")
        store.start()
        if not wait_log(os.path.join(data, "store.log"), "result store running"):
            sys.exit("the store did not start")
        for w in workers:
            w.start()
        ingress.start()
        for w in workers:
            if not wait_log(os.path.join(data, w.name + ".log"), "subscribed to $share/"):
                sys.exit(f"{w.name} did not start")
        for _ in range(600):
            if http("GET", base + "/health", timeout=1)[0] == 200:
                break
            time.sleep(0.2)
        log(f"running: broker :{mqtt_port} (persistence on), store, {args.workers} workers, ingress :{http_port}; "
            f"model {os.path.basename(args.model)}; logs in {data}")

        # -- submitting at the rate
        next_index = [0]
        start = time.time()
        broker_restart_index = int(args.jobs * args.broker_restart_at) if args.broker_restart_at >= 0 else -1

        def sender():
            while True:
                with lock:
                    i = next_index[0]
                    if i >= args.jobs:
                        return
                    next_index[0] += 1
                due = start + i / args.rate
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                body = images[i % len(images)]
                while True:
                    sent = time.time()
                    status, payload, headers = http("POST", base + "/predict", body)
                    if status == 202:
                        with lock:
                            state["accepted"][payload["job_id"]] = sent
                        break
                    with lock:
                        if status in (429, 503):
                            state["refused"] += 1
                        else:
                            state["errors"] += 1
                    time.sleep(float(headers.get("Retry-After", "1")) if status in (429, 503) else 1)

        senders = [threading.Thread(target=sender, daemon=True) for _ in range(args.senders)]
        for s in senders:
            s.start()

        # -- chaos while submitting
        store_log = os.path.join(data, "store.log")

        def restart_store():
            offset = os.path.getsize(store_log)
            store.start()
            if not wait_log(store_log, "result store running", offset=offset):
                log("the store did not come back")

        def store_crash_loop():
            for _ in range(args.store_kills):
                log(f"SIGKILL store (pid {store.proc.pid})")
                store.kill()
                state["store_kills"] += 1
                time.sleep(rng.uniform(1, 3))
                restart_store()
                time.sleep(rng.uniform(0, 0.2))
            log(f"SIGKILL store (pid {store.proc.pid}), last time")
            store.kill()
            state["store_kills"] += 1
            time.sleep(1)
            restart_store()
            log("store back")

        def broker_kill_while_store_down():
            log(f"SIGKILL store (pid {store.proc.pid}), then the broker while the store is down")
            store.kill()
            state["store_kills"] += 1
            time.sleep(2)
            broker.kill()
            state["broker_kills"] += 1
            time.sleep(1)
            broker.start()
            wait_port(mqtt_port)
            restart_store()
            log("broker and store back")

        crash_loop_index = int(args.jobs * args.store_crash_loop_at) if args.store_crash_loop_at >= 0 else -1
        broker_kill_index = int(args.jobs * args.broker_kill_at) if args.broker_kill_at >= 0 else -1

        def chaos():
            crash_looped = broker_killed = False
            restarted = False
            next_kill = time.time() + args.kill_every * rng.uniform(0.5, 1.5) if args.kill_every > 0 else None
            while any(s.is_alive() for s in senders):
                now = time.time()
                if not restarted and broker_restart_index >= 0 and next_index[0] >= broker_restart_index:
                    restarted = True
                    log("restarting the broker (SIGTERM, start again on the same port and persistence)")
                    broker.stop()
                    time.sleep(1)
                    broker.start()
                    wait_port(mqtt_port)
                    state["broker_restarts"] += 1
                    log("broker back")
                if not crash_looped and crash_loop_index >= 0 and next_index[0] >= crash_loop_index:
                    crash_looped = True
                    store_crash_loop()
                if not broker_killed and broker_kill_index >= 0 and next_index[0] >= broker_kill_index:
                    broker_killed = True
                    broker_kill_while_store_down()
                if next_kill and now >= next_kill:
                    victim = rng.choice(workers)
                    log(f"SIGKILL {victim.name} (pid {victim.proc.pid})")
                    victim.kill()
                    state["kills"] += 1
                    time.sleep(args.restart_after)
                    victim.start()
                    next_kill = time.time() + args.kill_every * rng.uniform(0.5, 1.5)
                time.sleep(0.2)

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()

        def ledger_stats():
            """The store's retained ledger counts (queued/running), read with mosquitto_sub."""
            try:
                out = subprocess.run(["mosquitto_sub", "-p", str(mqtt_port), "-t", "conveyor/v1/store/stats",
                                      "-C", "1", "-W", "2"], capture_output=True, text=True, timeout=5).stdout
                stats = json.loads(out)
                return f"{stats['queued']} queued, {stats['running']} running"
            except (ValueError, KeyError, subprocess.SubprocessError):
                return "no stats"

        def ask(ids):
            """The store's status of each job (via the ingress)."""
            out = {}
            lock2 = threading.Lock()
            chunk = list(ids)

            def worker(part):
                for jid in part:
                    status, payload, _ = http("GET", f"{base}/job/{jid}", timeout=30)
                    s = payload.get(jid, {}) if status == 200 else {}
                    with lock2:
                        out[jid] = s
            parts = [chunk[i::8] for i in range(8)]
            ts = [threading.Thread(target=worker, args=(p,)) for p in parts]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            return out

        last_print = 0
        while any(s.is_alive() for s in senders):
            time.sleep(0.5)
            if time.time() - last_print >= 5:
                last_print = time.time()
                with lock:
                    acc, ref = len(state["accepted"]), state["refused"]
                ledger = ledger_stats()
                log(f"submitted {next_index[0]}/{args.jobs}, accepted {acc}, refused {ref} (retried); "
                    f"ledger: {ledger}; worker kills {state['kills']}, store kills {state['store_kills']}, "
                        f"broker restarts {state['broker_restarts']}, broker kills {state['broker_kills']}")
        chaos_thread.join()
        for w in workers:
            if not w.running():
                w.start()
        submit_seconds = time.time() - start
        log(f"all {len(state['accepted'])} jobs accepted in {submit_seconds:.0f} s; waiting for the last results")

        # -- drain: ask the store until every accepted job is terminal
        accepted = dict(state["accepted"])
        records = {}
        pending = set(accepted)
        deadline = time.time() + args.drain_timeout
        while pending and time.time() < deadline:
            answers = ask(pending)
            for jid, rec in answers.items():
                if rec.get("status") in TERMINAL:
                    records[jid] = rec
                    pending.discard(jid)
            log(f"terminal {len(records)}/{len(accepted)}")
            if pending:
                time.sleep(5)
        total_seconds = time.time() - start

        counts = {}
        for rec in records.values():
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        unknown = ask(pending) if pending else {}
        lost = len(accepted) - len(records)
        latencies = [records[j]["timings"]["finished_at"] / 1000 - accepted[j]
                     for j in records if records[j].get("timings", {}).get("finished_at")]
        print()
        print(f"soak: {args.jobs} jobs at {args.rate:g}/s, {args.workers} workers, model {os.path.basename(args.model)}, "
              f"lease {args.lease:g} s; {state['kills']} worker SIGKILLs, "
              f"{state['store_kills']} store SIGKILLs, {state['broker_restarts']} broker restart(s), "
              f"{state['broker_kills']} broker SIGKILL(s) while the store was down")
        print(f"accepted {len(accepted)} (refused-and-retried {state['refused']}, HTTP errors {state['errors']}) "
              f"in {submit_seconds:.0f} s; all terminal after {total_seconds:.0f} s")
        print("terminal states: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print(f"lost = accepted - terminal = {lost}")
        if unknown:
            print("not terminal: " + ", ".join(f"{j}: {r.get('status', '?')}" for j, r in list(unknown.items())[:10]))
        print("latency accepted -> finished (s): " + ", ".join(
            f"p{p} {percentile(latencies, p):.2f}" for p in (50, 90, 99)) + f", max {max(latencies or [0]):.2f}")
        failed = [r.get("error") for r in records.values() if r["status"] != "succeeded"]
        if failed:
            print("reasons: " + "; ".join(sorted(set(str(e) for e in failed))[:5]))
        return 1 if lost else 0
    finally:
        for s in everything:
            s.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", data])
        else:
            print(f"logs kept in {data}")


if __name__ == "__main__":
    sys.exit(main())
