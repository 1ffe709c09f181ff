#!/usr/bin/env bash
# Runs the libFuzzer targets (Fuzz/Targets).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]
#   scripts/fuzz.sh all SECONDS [libFuzzer flags…]       each target in turn
#
# TARGET: jpeg-decode, request-json or mqtt-payload. Builds the targets with
# `-sanitize=fuzzer,address -D FUZZING` in their own scratch directory (.build-fuzz, so
# the flags never reach the normal build), then fuzzes for SECONDS starting from the
# committed seeds (Fuzz/corpus/TARGET). New interesting inputs go to
# .build-fuzz/corpus/TARGET (kept between runs, not committed); a crash is written to
# .build-fuzz/crashes/TARGET/ and makes the script exit non-zero. Replay a crash with the
# normal build: .build/debug/FuzzJPEGDecode FILE.
#
# Environment: FUZZ_JOBS=N runs N processes per target (default 1); FUZZ_NICE=1 runs
# them under `nice`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
which="$1"; seconds="$2"; shift 2

declare -A products=([jpeg-decode]=FuzzJPEGDecode [request-json]=FuzzRequestJSON [mqtt-payload]=FuzzMQTTPayload)
if [ "$which" = all ]; then
  targets=(jpeg-decode request-json mqtt-payload)
elif [ -n "${products[$which]:-}" ]; then
  targets=("$which")
else
  echo "fuzz: unknown target '$which' (jpeg-decode, request-json, mqtt-payload, all)" >&2
  exit 2
fi

scratch=.build-fuzz
# lld: gold fails on libFuzzer beside the renamed entry point (<module>_main) SwiftPM links.
flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING
       -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
for t in "${targets[@]}"; do
  swift build --scratch-path "$scratch" "${flags[@]}" --product "${products[$t]}"
done
bin="$(swift build --scratch-path "$scratch" "${flags[@]}" --show-bin-path)"

status=0
for t in "${targets[@]}"; do
  corpus="$scratch/corpus/$t"; crashes="$scratch/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  echo "fuzz: $t for ${seconds}s (seeds Fuzz/corpus/$t, corpus $corpus)"
  run=()
  [ "${FUZZ_NICE:-0}" = 1 ] && run+=(nice)
  run+=("$bin/${products[$t]}" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -max_len=262144 -artifact_prefix="$crashes/")
  if [ "${FUZZ_JOBS:-1}" != 1 ]; then run+=(-fork="${FUZZ_JOBS}"); fi
  run+=("$@" "$corpus" "Fuzz/corpus/$t")
  log="$scratch/$t.log"
  if "${run[@]}" > "$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE" "$log" | sed "s/^/fuzz: $t: /" || true
    echo "fuzz: $t: corpus $(find "$corpus" -type f | wc -l) files; no crash"
  else
    status=1
    echo "fuzz: $t FAILED (log $log; crash inputs in $crashes):" >&2
    grep -E "ERROR|SUMMARY|Fatal error|Test unit written" "$log" | head -20 >&2 || tail -30 "$log" >&2
  fi
done
exit $status
