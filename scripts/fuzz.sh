#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (release, fuzzer + AddressSanitizer) and runs each for SECONDS (default 60),
# from the checked-in seeds plus the test models, with the crash regressions of Fuzz/Regressions run first.
# Exits non-zero when a target crashes, leaks past its limits or a regression input fails again.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# The build by hand (in Fuzz/): swift build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address
# Environment: FUZZ_WORK (default .build-fuzz-work) holds each target's growing corpus and the crash artifacts;
# FUZZ_RUNS=N runs N executions per target instead of a time limit (the long campaign: docs/fuzzing.md);
# FUZZ_MAX_LEN=BYTES caps the inputs libFuzzer makes (default 1 MiB); test models larger than it are not copied
# into the container targets' corpus (the campaign keeps to the tiny seed models of Fuzz/Seeds/Models: faster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
seconds="${1:-60}"
max_len="${FUZZ_MAX_LEN:-1048576}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzContainer FuzzContainerFile FuzzMetadata FuzzTokenizer FuzzAudio)
work="${FUZZ_WORK:-$PWD/.build-fuzz-work}"
mkdir -p "$work"
export LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp:print_suppressions=0"

# The Swift driver keeps only the last of several -sanitize= flags, and SwiftPM passes one per --sanitize: the
# combined flag goes last so the Swift code gets coverage instrumentation as well as ASan. lld: gold fails on some
# of these links (an internal error in its DWARF reader).
(cd Fuzz && swift build -c release --sanitize fuzzer --sanitize address --scratch-path ../.build-fuzz \
   -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 | tail -3)
bin=".build-fuzz/release"

status=0
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  mkdir -p "$corpus" "$work/crashes/$t"
  [ -d "Fuzz/Seeds/$t" ] && cp -n Fuzz/Seeds/$t/* "$corpus/" 2>/dev/null || true
  case "$t" in
    FuzzContainer|FuzzContainerFile)
      for m in Fuzz/Seeds/Models/*.usm Tests/USMModelTests/Golden/golden-int4.usm Tests/USMModelTests/Golden/golden-exp5.usm \
               Tests/USMModelTests/Golden/golden-exp2.usm Tests/USMModelTests/Golden/small-exp5.usm; do
        [ "$(stat -c %s "$m")" -le "$max_len" ] && cp -n "$m" "$corpus/" 2>/dev/null || true
      done ;;
  esac
  # crash regressions: each must now run clean
  if [ -d "Fuzz/Regressions/$t" ] && ls Fuzz/Regressions/$t/* >/dev/null 2>&1; then
    echo "== $t: regressions"
    "$bin/$t" -rss_limit_mb=4096 -timeout=30 Fuzz/Regressions/$t/* || { echo "$t: a regression input fails again"; status=1; }
  fi
  # a target whose code is not instrumented would fuzz blind: its seeds must show coverage
  cov=$("$bin/$t" -runs=0 "$corpus" 2>&1 | sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' | head -1)
  if [ -z "$cov" ] || [ "$cov" -lt 50 ]; then echo "$t: the seeds show no coverage (${cov:-none}): not instrumented?"; status=1; continue; fi
  limit=(-max_total_time="$seconds")
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  echo "== $t: ${FUZZ_RUNS:+$FUZZ_RUNS runs}${FUZZ_RUNS:-$seconds s}"
  if ! "$bin/$t" "${limit[@]}" -rss_limit_mb=4096 -timeout=30 -max_len="$max_len" -print_final_stats=1 \
       -artifact_prefix="$work/crashes/$t/" "$corpus" 2>"$work/$t.log"; then
    echo "$t: CRASH (see $work/$t.log and $work/crashes/$t/)"
    tail -40 "$work/$t.log"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$work/$t.log" | tail -3 || true
done
exit $status
