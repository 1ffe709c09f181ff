#!/usr/bin/env bash
# Device latency: `conveyor up` (private mosquitto, store, N workers, ingress) and
# `conveyor device` (one simulated MQTT v5 camera) at a fixed rate; prints the
# simulator's report per worker count. Stops what it started by PID.
#   benchmarks/device_latency.sh            # env: BIN RATE COUNT WORKERS IMAGES MODEL LABELS KERNEL
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
BIN=${BIN:-$root/.build/debug/conveyor}
RATE=${RATE:-4}
COUNT=${COUNT:-200}
WORKERS=${WORKERS:-"1 2"}
MODEL=${MODEL:-$shared/models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5}
LABELS=${LABELS:-$shared/data/image_net_labels.json}
KERNEL=${KERNEL:-}   # empty: OPENBLAS_CORETYPE if set, else auto
if [ -z "${IMAGES:-}" ]; then
  IMAGES=$(mktemp -d); cp "$shared/data/images/cat.jpg" "$IMAGES/"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for w in $WORKERS; do
  threads=$(( $(nproc) / w )); [ "$threads" -ge 1 ] || threads=1
  dir=$(mktemp -d)
  mport=$(free_port); hport=$(free_port)
  kernel_args=(); [ -n "$KERNEL" ] && kernel_args=(--blas-kernel "$KERNEL")
  "$BIN" up --model "$MODEL" --labels "$LABELS" --workers "$w" --threads "$threads" --mqtt-port "$mport" \
    --port "$hport" --host 127.0.0.1 --data-dir "$dir" --log-level info "${kernel_args[@]}" > "$dir/up.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$hport/health" > /dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "conveyor up exited:"; tail -20 "$dir/up.log"; exit 1; }
    sleep 0.5
  done
  sleep 2
  echo "== $w worker(s) x $threads thread(s), $(grep -o 'OpenBLAS kernel[^\"]*' "$dir/up.log" | head -1 || true); $COUNT requests at $RATE/s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$BIN" device --broker "mqtt://127.0.0.1:$mport" --images "$IMAGES" --rate "$RATE" --count "$COUNT" --timeout 60 2>/dev/null || true
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
done
