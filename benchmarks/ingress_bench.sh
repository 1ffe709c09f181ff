#!/usr/bin/env bash
# Ingress submission cost, two conveyor binaries side by side: for each round and each
# binary (A B, then B A, ...), a fresh private mosquitto, `conveyor store` and `conveyor
# ingress` (no workers: only acceptance is measured) on free loopback ports, then
#   latency:    one connection, POST /predict one after another for --latency-seconds:
#               wrk's p50 and p99 of the time to the 202;
#   throughput: wrk with --connections connections for --seconds: accepted requests/s
#               (only 202s count; anything else is reported).
# Prints each run, then per binary the median of its runs and the ratios B/A.
# With --b-traces, B's store and ingress export their spans (OTLP/HTTP) to a sink this
# script runs, which answers every export with 200: the cost of tracing, switched on.
#
#   benchmarks/ingress_bench.sh --a OLD/conveyor --b NEW/conveyor [--rounds 3] [--seconds 10]
#        [--latency-seconds 5] [--connections 16] [--image FILE] [--b-traces]
#
# The image defaults to a 3/8-scale re-encode (quality 79, about 156 KB) of
# ../shared/data/images/0000.jpg. Needs wrk, mosquitto, djpeg/cjpeg, python3, curl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
a="" b="" rounds=3 seconds=10 latency_seconds=5 connections=16 image="" b_traces=""
while [ $# -gt 0 ]; do
  case "$1" in
    --a) a="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --latency-seconds) latency_seconds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --b-traces) b_traces=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "ingress_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$a" ] && [ -x "$b" ] || { echo "ingress_bench: --a and --b must be conveyor executables" >&2; exit 2; }
for tool in wrk mosquitto python3 curl; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "ingress_bench: $tool missing" >&2; exit 2; }
done

work="$(mktemp -d -t conveyor-ingress-bench-XXXX)"
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
local accepted = 0
local other = 0
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end
LUA
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

otlp=""
if [ -n "$b_traces" ]; then
  sink_port="$(free_port)"
  cat > "$work/otlp_sink.py" <<'PY'
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
  python3 "$work/otlp_sink.py" "$sink_port" > "$work/otlp-sink.log" 2>&1 &
  pids+=($!)
  disown
  otlp="http://127.0.0.1:$sink_port"
fi

# One run of binary $1: prints "latency_p50_ms latency_p99_ms accepted_per_s non_202".
run_once() {
  local bin="$1" traces="$2" dir="$work/run-$RANDOM"
  local -a env=()
  [ -n "$traces" ] && env=(env "OTEL_EXPORTER_OTLP_ENDPOINT=$traces")
  mkdir -p "$dir"
  local mqtt http; mqtt="$(free_port)"; http="$(free_port)"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 100000\nmessage_size_limit 16777216\n%s' \
    "$mqtt" "$( [ "$(id -u)" = 0 ] && echo 'user root' )" > "$dir/mosquitto.conf"
  /usr/sbin/mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 & pids+=($!); local broker=$!
  sleep 0.3
  "${env[@]}" "$bin" store --broker "mqtt://127.0.0.1:$mqtt" --database "$dir/jobs.sqlite" --log-level warning > "$dir/store.log" 2>&1 &
  pids+=($!); local store=$!
  "${env[@]}" "$bin" ingress --broker "mqtt://127.0.0.1:$mqtt" --model-name inception_v3 --host 127.0.0.1 --port "$http" \
    --rest-port 0 --grpc-port 0 --max-queued 0 --log-level warning > "$dir/ingress.log" 2>&1 &
  pids+=($!); local ingress=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/health" >/dev/null && break; sleep 0.1; done
  sleep 1.5   # the store's first ledger stats
  local lat thr
  lat="$(BODY="$body" wrk -t1 -c1 -d"${latency_seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$http/predict" 2>&1)"
  thr="$(BODY="$body" wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "http://127.0.0.1:$http/predict" 2>&1)"
  kill "$ingress" "$store" 2>/dev/null || true; wait "$ingress" "$store" 2>/dev/null || true
  kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true
  python3 - "$lat" "$thr" "$seconds" <<'PY'
import re, sys
lat, thr, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
def ms(text):
    value, unit = float(text[:-2] if text.endswith(("ms", "us")) else text[:-1]), text[-2:] if text.endswith(("ms", "us")) else text[-1:]
    return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]
p50 = ms(re.search(r"50%\s+(\S+)", lat).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", lat).group(1))
total = int(re.search(r"(\d+) requests in", thr).group(1))
non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", thr).group(1)) if "Non-2xx" in thr else 0
errors = re.search(r"Socket errors: (.*)", thr)
print(f"{p50:.2f} {p99:.2f} {(total - non2xx) / seconds:.1f} {non2xx}" + (f" [{errors.group(1)}]" if errors else ""))
PY
}

echo "ingress_bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "image $(wc -c < "$image") bytes; A = $a; B = $b${otlp:+ (exporting spans)}; $rounds round(s), wrk $connections connections ${seconds}s, latency ${latency_seconds}s on 1 connection"
printf '%-6s %-3s %10s %10s %12s %8s\n' round bin p50_ms p99_ms accepted/s non202
results="$work/results"
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="A B"; else order="B A"; fi
  for which in $order; do
    bin="$a" traces=""; [ "$which" = B ] && bin="$b" && traces="$otlp"
    line="$(run_once "$bin" "$traces")"
    echo "$which $line" >> "$results"
    printf '%-6s %-3s %10s %10s %12s %8s %s\n' "$round" "$which" $line
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {w: [statistics.median(float(r[i]) for r in rows if r[0] == w) for i in (1, 2, 3)] for w in ("A", "B")}
for w in ("A", "B"):
    print(f"median {w}: p50 {med[w][0]:.2f} ms, p99 {med[w][1]:.2f} ms, {med[w][2]:.1f} accepted/s")
print(f"B - A: p50 {med['B'][0] - med['A'][0]:+.2f} ms; B/A: accepted/s {med['B'][2] / med['A'][2]:.3f}")
PY
