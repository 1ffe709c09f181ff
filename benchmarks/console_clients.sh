#!/usr/bin/env bash
# What connected console clients cost the ingress: accepted submissions/s with 0, 100 and
# 1000 clients reading GET /events, interleaved (0 100 1000, then 1000 100 0, ...), on one
# private mosquitto, `conveyor store` and `conveyor ingress` (no workers: only acceptance is
# measured; every accepted job is a `queued` change that goes to every client).
# For each run: wrk with --connections connections for --seconds on POST /predict
# (only 202s count), and what the clients received meanwhile. Prints each run, then per
# client count the median accepted/s and its ratio to 0 clients.
#
#   benchmarks/console_clients.sh --bin PATH/conveyor [--rounds 3] [--seconds 10]
#        [--connections 16] [--clients "0 100 1000"] [--image FILE]
#
# The clients run on this machine too (one Python asyncio process), so they take CPU the
# ingress would otherwise have: on a 2-core machine the figure is a lower bound.
# The image defaults to a 3/8-scale re-encode (quality 79, about 156 KB) of
# ../shared/data/images/0000.jpg. Needs wrk, mosquitto, djpeg/cjpeg, python3, curl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="" rounds=3 seconds=10 connections=16 clients="0 100 1000" image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "console_clients: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "console_clients: --bin must be a conveyor executable" >&2; exit 2; }
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "console_clients: $tool missing" >&2; exit 2; }
done
ulimit -n 20000 2>/dev/null || true

work="$(mktemp -d -t conveyor-console-bench-XXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$image" ]; then
  image="$work/image.jpg"
  djpeg -scale 3/8 "$here/../../shared/data/images/0000.jpg" | cjpeg -quality 79 > "$image"
fi
body="$work/body.json"
python3 -c 'import base64,json,sys; json.dump({"image_data": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}, open(sys.argv[2],"w"))' "$image" "$body"
cat > "$work/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
# N clients on /events until SIGTERM; then prints "connected bytes jobs_events summaries cpu_seconds".
cat > "$work/clients.py" <<'PY'
import asyncio, resource, signal, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
totals = {"connected": 0, "bytes": 0, "jobs": 0, "summary": 0}
async def client():
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " in status:
        totals["connected"] += 1
    while True:
        data = await reader.read(65536)
        if not data:
            return
        totals["bytes"] += len(data)
        totals["jobs"] += data.count(b"event: jobs")
        totals["summary"] += data.count(b"event: summary")
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(client()))
        await asyncio.sleep(0.001)
    print("ready", flush=True)
    await stop.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(totals["connected"], totals["bytes"], totals["jobs"], totals["summary"],
          round(usage.ru_utime + usage.ru_stime, 2), flush=True)
asyncio.run(main())
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

mqtt="$(free_port)"; http="$(free_port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 100000\nmessage_size_limit 16777216\n%s' \
  "$mqtt" "$( [ "$(id -u)" = 0 ] && echo 'user root' )" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
sleep 0.3
"$bin" store --broker "mqtt://127.0.0.1:$mqtt" --database "$work/jobs.sqlite" --log-level warning > "$work/store.log" 2>&1 &
pids+=($!)
"$bin" ingress --broker "mqtt://127.0.0.1:$mqtt" --model-name inception_v3 --host 127.0.0.1 --port "$http" \
  --rest-port 0 --grpc-port 0 --max-queued 0 --log-level warning > "$work/ingress.log" 2>&1 &
pids+=($!); ingress=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/health" >/dev/null && break; sleep 0.1; done
sleep 1.5   # the store's first ledger stats

# CPU seconds the ingress has used so far (user + system).
cpu_seconds() { python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$ingress"; }

# One run with $1 clients: prints "clients accepted_per_s non_202 connected MB_received
# jobs_events summaries ingress_cpu_ms_per_accepted clients_cpu_s".
run_once() {
  local n="$1" holder="" out="$work/clients-$RANDOM.txt"
  if [ "$n" -gt 0 ]; then
    python3 "$work/clients.py" "$http" "$n" > "$out" 2>&1 & holder=$!
    pids+=($holder)
    for _ in $(seq 200); do grep -q ready "$out" 2>/dev/null && break; sleep 0.1; done
    sleep 1
  fi
  local thr before after
  before="$(cpu_seconds)"
  thr="$(BODY="$body" wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "http://127.0.0.1:$http/predict" 2>&1)"
  after="$(cpu_seconds)"
  local seen="0 0 0 0 0"
  if [ -n "$holder" ]; then
    kill -TERM "$holder"; wait "$holder" 2>/dev/null || true
    seen="$(tail -1 "$out")"
  fi
  python3 - "$n" "$thr" "$seconds" "$seen" "$before" "$after" <<'PY'
import re, sys
n, thr, seconds, seen = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
cpu = float(sys.argv[6]) - float(sys.argv[5])
total = int(re.search(r"(\d+) requests in", thr).group(1))
non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", thr).group(1)) if "Non-2xx" in thr else 0
connected, received, jobs, summaries = (int(x) for x in seen[:4])
accepted = total - non2xx
print(n, round(accepted / seconds, 1), non2xx, connected, round(received / 1e6, 1), jobs, summaries,
      round(cpu * 1000 / max(1, accepted), 3), seen[4])
PY
}

echo "clients accepted/s non-202 connected MB_received jobs_events summaries ingress_cpu_ms/accepted clients_cpu_s"
results="$work/results.txt"
for round in $(seq "$rounds"); do
  order="$clients"
  [ $((round % 2)) -eq 0 ] && order="$(echo "$clients" | tr ' ' '\n' | tac | tr '\n' ' ')"
  for n in $order; do
    line="$(run_once "$n")"
    echo "$line" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    parts = line.split()
    runs.setdefault(int(parts[0]), []).append((float(parts[1]), float(parts[7])))
base = statistics.median(r[0] for r in runs.get(0, [(float("nan"), 0)]))
print("\nclients  median accepted/s  ratio to 0 clients  ingress CPU ms per accepted job")
for n in sorted(runs):
    median = statistics.median(r[0] for r in runs[n])
    cpu = statistics.median(r[1] for r in runs[n])
    print(f"{n:7d}  {median:17.1f}  {median / base:18.3f}  {cpu:.3f}")
PY
