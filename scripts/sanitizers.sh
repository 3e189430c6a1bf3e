#!/usr/bin/env bash
# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer, and the concurrency tests under
# ThreadSanitizer (each in its own build folder). Exits non-zero on any sanitizer report or test failure.
#   bash scripts/sanitizers.sh [address] [undefined] [thread]     (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(address undefined thread)
# Reports stop the run: a sanitizer finding is a failure, not a log line.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
for k in "${kinds[@]}"; do
  export USM_SANITIZER="$k"  # tests that would limit a sanitized process's address space leave it unlimited
  echo "== swift test --sanitize $k"
  case "$k" in
    # The whole suite.
    address) swift test --sanitize address --scratch-path ".build-address" ;;
    # Swift has no UndefinedBehaviorSanitizer on Linux (its own arithmetic and bounds already trap): the C kernels
    # get it, with the runtime linked in, and any report aborts.
    undefined) swift test --scratch-path ".build-undefined" -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined \
                 -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined ;;
    # The tests that share one model between threads.
    thread) swift test --sanitize thread --scratch-path ".build-thread" --filter "Concurrency|Pool" ;;
    *) echo "unknown sanitizer $k" >&2; exit 64 ;;
  esac
done
