#!/usr/bin/env bash
# InceptionV3 inference speed: ONNX Runtime (CPU) vs conveyor, on the same fixture model.
# See benchmarks/README.md. Usage: benchmarks/onnx_vs_conveyor.sh [options]  (--help for the list)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

  --batch LIST        batch sizes for both engines, comma separated (default: 1,16)
  --threads N         threads for ORT (intra_op_num_threads) and conveyor (default: \$THREADS or 2)
  --kernels LIST      OpenBLAS kernels for conveyor, one run each (default: auto,Haswell);
                      passed as --kernel K (or --blas-kernel K if that is what conveyor has);
                      'auto' passes no kernel option (automatic choice for this CPU)
  --min-seconds S     time each batch size for at least S seconds (default: 10)
  --min-runs N        and at least N timed runs (default: 10)
  --warmup N          untimed warm-up runs per batch size (default: 3)
                      (the last three go to conveyor as --seconds/--runs/--warmup if it has them)
  --rounds N          repeat the timing N times, ORT and conveyor interleaved in ABBA order: odd rounds
                      run ORT, then the kernels; even rounds the kernels in reverse order, then ORT
                      (default: 3); the report gives the median of the per-round ratios
  --nice N            run the timed phases under 'nice -n N' (negative N, as root, lets them preempt
                      other work on a shared machine; the report still shows the other load)
  --no-build          do not run 'swift build -c release --product conveyor' first
  --no-conveyor       ORT only (skip the build and the conveyor runs)
  -h, --help          this text

Environment: CONVEYOR (binary, default $REPO/.build/release/conveyor),
             MODELS_DIR (default: <repo>/../shared/models), THREADS, PYTHON (for the venv, default python3),
             SWIFT (default swift).
Outputs go to $HERE/out/: latest.md, and for round R ort.rR.json and
conveyor.<kernel>.rR.json/.log/.load (an earlier run's timing files are removed first).
Exit status: 0 all fine; 1 setup, conversion or ONNX check failed; 3 ORT was measured but at
least one conveyor run is missing or failed (the report is still written).
EOF
}

BATCH="1,16"
THREADS="${THREADS:-2}"
KERNELS="auto,Haswell"
MIN_SECONDS=10
MIN_RUNS=10
WARMUP=3
ROUNDS=3
BUILD=1
RUN_CONVEYOR=1
NICE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --batch) BATCH="$2"; shift 2 ;;
        --batch=*) BATCH="${1#*=}"; shift ;;
        --threads) THREADS="$2"; shift 2 ;;
        --threads=*) THREADS="${1#*=}"; shift ;;
        --kernels) KERNELS="$2"; shift 2 ;;
        --kernels=*) KERNELS="${1#*=}"; shift ;;
        --min-seconds) MIN_SECONDS="$2"; shift 2 ;;
        --min-seconds=*) MIN_SECONDS="${1#*=}"; shift ;;
        --min-runs) MIN_RUNS="$2"; shift 2 ;;
        --min-runs=*) MIN_RUNS="${1#*=}"; shift ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --warmup=*) WARMUP="${1#*=}"; shift ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --rounds=*) ROUNDS="${1#*=}"; shift ;;
        --nice) NICE="$2"; shift 2 ;;
        --nice=*) NICE="${1#*=}"; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-conveyor) RUN_CONVEYOR=0; BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 1 ;;
    esac
done
[[ "$BATCH" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "bad --batch '$BATCH' (e.g. 1,4,16)" >&2; exit 1; }
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || { echo "bad --threads '$THREADS'" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "bad --rounds '$ROUNDS' (a positive integer)" >&2; exit 1; }
NICE_CMD=()
if [ -n "$NICE" ]; then
    [[ "$NICE" =~ ^-?[0-9]+$ ]] || { echo "bad --nice '$NICE'" >&2; exit 1; }
    NICE_CMD=(nice -n "$NICE")
fi

MODELS_DIR="${MODELS_DIR:-$REPO/../shared/models}"
[ -d "$MODELS_DIR" ] && MODELS_DIR="$(cd "$MODELS_DIR" && pwd)"
MODEL_DIR="$MODELS_DIR/inception_v3"
CONFIG="$MODEL_DIR/inception_v3_model_config.json"
WEIGHTS="$MODEL_DIR/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
REF_DIR="$MODEL_DIR/ref"
CONVEYOR="${CONVEYOR:-$REPO/.build/release/conveyor}"
SWIFT="${SWIFT:-swift}"
VENV="$HERE/.venv"
OUT="$HERE/out"
ONNX="$OUT/inception_v3.onnx"
PY="$VENV/bin/python"
HELPER="$HERE/onnx_bench.py"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for f in "$CONFIG" "$WEIGHTS" "$REF_DIR/cat.input.f32" "$REF_DIR/cat.probs.f32"; do
    [ -e "$f" ] || die "fixture missing: $f (set MODELS_DIR to the folder holding inception_v3/)"
done
mkdir -p "$OUT"

# ---- 1. venv (reused; re-synced when requirements.txt changes) ----------------------------------
say "1/5 Python venv at $VENV"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"
if [ ! -x "$PY" ]; then
    "${PYTHON:-python3}" -m venv "$VENV" || die "could not create the venv (is python3-venv installed?)"
fi
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2 || die "pip install -r $REQ failed"
    echo "$want" > "$STAMP"
else
    echo "reusing venv (requirements unchanged)" >&2
fi
"$PY" -c 'import onnxruntime, numpy; print("onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)' >&2

# ---- 2. convert + verify ------------------------------------------------------------------------
say "2/5 ONNX model $ONNX"
# TensorFlow only converts; keep its thread pools and logs small.
OMP_NUM_THREADS="$THREADS" TF_CPP_MIN_LOG_LEVEL=2 \
    "$PY" "$HELPER" convert --config "$CONFIG" --weights "$WEIGHTS" --ref-dir "$REF_DIR" --out "$ONNX" \
    || die "conversion to ONNX failed"
OPENBLAS_NUM_THREADS=1 "$PY" "$HELPER" verify --onnx "$ONNX" --ref-dir "$REF_DIR" --threads "$THREADS" \
    --json "$OUT/verify.json" || die "the ONNX model does not match ref/cat.probs.f32 within 1e-4"

# ---- 3. build conveyor (before any timing, so the compiler never competes with a measurement) ----
CONVEYOR_ERROR=""
if [ "$RUN_CONVEYOR" = 1 ]; then
    if [ "$BUILD" = 1 ]; then
        say "3/5 swift build -c release --product conveyor (in $REPO)"
        if ! (cd "$REPO" && "$SWIFT" build -c release --product conveyor >&2); then
            CONVEYOR_ERROR="swift build -c release --product conveyor failed (see the output above)"
            echo "warning: $CONVEYOR_ERROR; ORT is still measured" >&2
        fi
    else
        say "3/5 build skipped (--no-build)"
    fi
    if [ -z "$CONVEYOR_ERROR" ] && [ ! -x "$CONVEYOR" ]; then
        CONVEYOR_ERROR="conveyor binary not found at $CONVEYOR (build it, or set CONVEYOR=/path/to/conveyor)"
        echo "warning: $CONVEYOR_ERROR; ORT is still measured" >&2
    fi
else
    say "3/5 conveyor skipped (--no-conveyor)"
fi

# ---- priority for the timed phases (--nice) ------------------------------------------------------
# With kernel autogroups (sched_autogroup_enabled=1) 'nice' only ranks processes of the same session, so
# it does nothing against work started from another terminal. The session's autogroup nice is raised
# too, and put back when the script exits.
if [ -n "$NICE" ] && [ -w "/proc/$$/autogroup" ]; then
    AUTOGROUP_SAVED="$(sed -n 's/.* nice *//p' "/proc/$$/autogroup")"
    if echo "$NICE" > "/proc/$$/autogroup" 2>/dev/null; then
        trap 'echo "${AUTOGROUP_SAVED:-0}" > "/proc/$$/autogroup" 2>/dev/null || true' EXIT
        echo "autogroup nice set to $NICE for the timed phases (was ${AUTOGROUP_SAVED:-0})" >&2
    else
        echo "warning: could not set the autogroup nice (root needed for a negative value)" >&2
    fi
fi

# ---- 4. timing: ROUNDS rounds, ORT and conveyor interleaved --------------------------------------
# The machine's speed drifts from minute to minute, so ORT and conveyor are timed in turns, in ABBA
# order: odd rounds run ORT and then the kernels, even rounds the kernels in reverse order and then ORT.
# The report compares each round's conveyor figures with the same round's ORT figures.
REPORT_ARGS=()
STATUS=0
KLIST=()
if [ "$RUN_CONVEYOR" = 1 ]; then
    IFS=',' read -r -a kernels_given <<< "$KERNELS"
    for k in "${kernels_given[@]}"; do
        [ -z "$k" ] || KLIST+=("$k")
    done
fi
KLIST_REVERSED=()
for ((i = ${#KLIST[@]} - 1; i >= 0; i--)); do KLIST_REVERSED+=("${KLIST[i]}"); done

# Ask the binary which options it has: the kernel option is --kernel or --blas-kernel, and the
# timing protocol (--seconds/--runs/--warmup) is made the same as ORT's where conveyor offers it.
KFLAG="--kernel"
TIMING_ARGS=()
if [ "${#KLIST[@]}" -gt 0 ] && [ -z "$CONVEYOR_ERROR" ]; then
    help="$("$CONVEYOR" bench --help 2>&1 || true)"
    if ! grep -q -- '--kernel[ =<]' <<< "$help" && grep -q -- '--blas-kernel' <<< "$help"; then
        KFLAG="--blas-kernel"
    fi
    grep -q -- '--seconds' <<< "$help" && TIMING_ARGS+=(--seconds "$MIN_SECONDS")
    grep -q -- '--runs' <<< "$help" && TIMING_ARGS+=(--runs "$MIN_RUNS")
    grep -q -- '--warmup' <<< "$help" && TIMING_ARGS+=(--warmup "$WARMUP")
fi

# time_ort ROUND: ONNX Runtime, all batch sizes, to out/ort.rROUND.json.
time_ort() {
    local r="$1" json="$OUT/ort.r$1.json"
    say "round $r/$ROUNDS: ONNX Runtime, batches $BATCH, $THREADS threads"
    # ORT has its own thread pool (intra_op_num_threads); OMP_NUM_THREADS matters only for OpenMP builds.
    # numpy's OpenBLAS is kept to one thread so it has no idle pool spinning next to ORT.
    OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS=1 \
        "${NICE_CMD[@]}" "$PY" "$HELPER" time --onnx "$ONNX" --ref-dir "$REF_DIR" --batch "$BATCH" --threads "$THREADS" \
        --warmup "$WARMUP" --min-runs "$MIN_RUNS" --min-seconds "$MIN_SECONDS" --json "$json" \
        || die "ONNX Runtime timing failed (round $r)"
    REPORT_ARGS+=(--ort "$r=$json")
}

# time_conveyor ROUND KERNEL: one conveyor bench run (never concurrent with anything else), to
# out/conveyor.KERNEL.rROUND.json (stdout), .log (stderr) and .load (other processes' CPU share).
time_conveyor() {
    local r="$1" k="$2" base rc
    base="$OUT/conveyor.${k//[^A-Za-z0-9_.-]/_}.r$r"
    if [ -n "$CONVEYOR_ERROR" ]; then
        REPORT_ARGS+=(--conveyor "$r:$k=!$CONVEYOR_ERROR"); STATUS=3; return
    fi
    say "round $r/$ROUNDS: conveyor bench, kernel $k, batches $BATCH, $THREADS threads"
    local kargs=()
    [ "$k" = auto ] || kargs=("$KFLAG" "$k")
    local cmd=("$CONVEYOR" bench --model "$WEIGHTS" --batch "$BATCH" --threads "$THREADS" "${TIMING_ARGS[@]}"
               --json "${kargs[@]}")
    echo "+ OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS ${cmd[*]}" >&2
    # OPENBLAS_CORETYPE and CONVEYOR_BLAS_KERNEL are cleared so that 'auto' really is the automatic
    # choice; otherwise the kernel option decides.
    # The helper only waits; it records how much CPU other processes took during the run.
    if env -u OPENBLAS_CORETYPE -u CONVEYOR_BLAS_KERNEL OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
            "${NICE_CMD[@]}" "$PY" "$HELPER" run --stdout "$base.json" --stderr "$base.log" --load "$base.load" \
            -- "${cmd[@]}"; then
        REPORT_ARGS+=(--conveyor "$r:$k=$base.json" --load "$r:$k=$(cat "$base.load")")
    else
        rc=$?
        echo "warning: conveyor bench (kernel $k, round $r) exited with $rc; its stderr ($base.log) ends with:" >&2
        tail -n 5 "$base.log" | sed 's/^/    /' >&2
        REPORT_ARGS+=(--conveyor "$r:$k=!conveyor bench exited with status $rc (log: out/$(basename "$base.log"))")
        STATUS=3
    fi
}

say "4/5 timing: $ROUNDS round(s) of ONNX Runtime${KLIST[0]:+ and conveyor (kernels ${KLIST[*]})}, ABBA order"
# Only this run's files may reach the report.
rm -f "$OUT"/ort*.json "$OUT"/conveyor.*
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2 == 1)); then
        time_ort "$r"
        for k in "${KLIST[@]}"; do time_conveyor "$r" "$k"; done
    else
        for k in "${KLIST_REVERSED[@]}"; do time_conveyor "$r" "$k"; done
        time_ort "$r"
    fi
done

# ---- report -------------------------------------------------------------------------------------
GIT_DESC=""
if rev="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"; then
    GIT_DESC="git $rev"
    if [ -n "$(git --no-optional-locks -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null)" ]; then
        GIT_DESC="$GIT_DESC (with uncommitted changes in Sources/ or Package.swift)"
    fi
fi
say "5/5 report"
rc=0
"$PY" "$HELPER" report "${REPORT_ARGS[@]}" --threads "$THREADS" ${NICE:+--nice "$NICE"} \
    --md "$OUT/latest.md" --relative-to "$REPO" ${GIT_DESC:+--git "$GIT_DESC"} || rc=$?
# The report exits 3 when a conveyor JSON could not be read (or a run failed), 1 or 2 on its own errors.
case "$rc" in
    0) ;;
    3) STATUS=3 ;;
    *) die "writing the report failed" ;;
esac
if [ "$STATUS" != 0 ]; then
    echo "note: conveyor figures are missing for at least one kernel or round (see the notes above); exit status $STATUS" >&2
fi
exit "$STATUS"
