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
  --nice N            run the timed phases under 'nice -n N' (negative N, as root, lets them preempt
                      other work on a shared machine; the report still shows the other load)
  --no-build          do not run 'swift build -c release --product conveyor' first
  --no-conveyor       ORT only (skip the build and the conveyor runs)
  -h, --help          this text

Environment: CONVEYOR (binary, default $REPO/.build/release/conveyor),
             MODELS_DIR (default: <repo>/../shared/models), THREADS, PYTHON (for the venv, default python3),
             SWIFT (default swift).
Outputs go to $HERE/out/ (latest.md, ort.json, conveyor.<kernel>.json, ...).
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

# ---- 4. ONNX Runtime timing ---------------------------------------------------------------------
say "4/5 ONNX Runtime: batches $BATCH, $THREADS threads"
# ORT has its own thread pool (intra_op_num_threads); OMP_NUM_THREADS matters only for OpenMP builds.
# numpy's OpenBLAS is kept to one thread so it has no idle pool spinning next to ORT.
OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS=1 \
    "${NICE_CMD[@]}" "$PY" "$HELPER" time --onnx "$ONNX" --ref-dir "$REF_DIR" --batch "$BATCH" --threads "$THREADS" \
    --warmup "$WARMUP" --min-runs "$MIN_RUNS" --min-seconds "$MIN_SECONDS" --json "$OUT/ort.json" \
    || die "ONNX Runtime timing failed"

# ---- 5. conveyor, one run per OpenBLAS kernel (one after another, never concurrently) --------------
REPORT_ARGS=()
STATUS=0
if [ "$RUN_CONVEYOR" = 1 ]; then
    say "5/5 conveyor bench: kernels $KERNELS, batches $BATCH, $THREADS threads"
    IFS=',' read -r -a KLIST <<< "$KERNELS"
    # Ask the binary which options it has: the kernel option is --kernel or --blas-kernel, and the
    # timing protocol (--seconds/--runs/--warmup) is made the same as ORT's where conveyor offers it.
    KFLAG="--kernel"
    TIMING_ARGS=()
    if [ -z "$CONVEYOR_ERROR" ]; then
        help="$("$CONVEYOR" bench --help 2>&1 || true)"
        if ! grep -q -- '--kernel[ =<]' <<< "$help" && grep -q -- '--blas-kernel' <<< "$help"; then
            KFLAG="--blas-kernel"
        fi
        grep -q -- '--seconds' <<< "$help" && TIMING_ARGS+=(--seconds "$MIN_SECONDS")
        grep -q -- '--runs' <<< "$help" && TIMING_ARGS+=(--runs "$MIN_RUNS")
        grep -q -- '--warmup' <<< "$help" && TIMING_ARGS+=(--warmup "$WARMUP")
    fi
    for k in "${KLIST[@]}"; do
        [ -n "$k" ] || continue
        safe="${k//[^A-Za-z0-9_.-]/_}"
        json="$OUT/conveyor.$safe.json"
        logf="$OUT/conveyor.$safe.log"
        rm -f "$json" "$logf" "$OUT/conveyor.$safe.load"
        if [ -n "$CONVEYOR_ERROR" ]; then
            REPORT_ARGS+=(--conveyor "$k=!$CONVEYOR_ERROR"); STATUS=3; continue
        fi
        kargs=()
        [ "$k" = auto ] || kargs=("$KFLAG" "$k")
        cmd=("$CONVEYOR" bench --model "$WEIGHTS" --batch "$BATCH" --threads "$THREADS" "${TIMING_ARGS[@]}"
             --json "${kargs[@]}")
        echo "+ OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS ${cmd[*]}" >&2
        # OPENBLAS_CORETYPE and CONVEYOR_BLAS_KERNEL are cleared so that 'auto' really is the automatic
        # choice; otherwise the kernel option decides.
        # The helper only waits; it records how much CPU other processes took during the run.
        if env -u OPENBLAS_CORETYPE -u CONVEYOR_BLAS_KERNEL OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
                "${NICE_CMD[@]}" "$PY" "$HELPER" run --stdout "$json" --stderr "$logf" --load "$OUT/conveyor.$safe.load" \
                -- "${cmd[@]}"; then
            REPORT_ARGS+=(--conveyor "$k=$json" --load "$k=$(cat "$OUT/conveyor.$safe.load")")
        else
            rc=$?
            echo "warning: conveyor bench (kernel $k) exited with $rc; its stderr ($logf) ends with:" >&2
            tail -n 5 "$logf" | sed 's/^/    /' >&2
            REPORT_ARGS+=(--conveyor "$k=!conveyor bench exited with status $rc (log: out/$(basename "$logf"))")
            STATUS=3
        fi
    done
fi

# ---- report -------------------------------------------------------------------------------------
GIT_DESC=""
if rev="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"; then
    GIT_DESC="git $rev"
    if [ -n "$(git --no-optional-locks -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null)" ]; then
        GIT_DESC="$GIT_DESC (with uncommitted changes in Sources/ or Package.swift)"
    fi
fi
say "report"
rc=0
"$PY" "$HELPER" report --ort "$OUT/ort.json" "${REPORT_ARGS[@]}" --threads "$THREADS" ${NICE:+--nice "$NICE"} \
    --md "$OUT/latest.md" --relative-to "$REPO" ${GIT_DESC:+--git "$GIT_DESC"} || rc=$?
# The report exits 3 when a conveyor JSON could not be read (or a run failed), 1 on its own errors.
case "$rc" in
    0) ;;
    3) STATUS=3 ;;
    *) die "writing the report failed" ;;
esac
if [ "$STATUS" != 0 ]; then
    echo "note: conveyor figures are missing for at least one kernel (see the notes above); exit status $STATUS" >&2
fi
exit "$STATUS"
