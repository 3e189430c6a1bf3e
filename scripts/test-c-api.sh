#!/usr/bin/env bash
# The C API (libusm, Sources/CUSMAPI/include/usm.h) from a C program: builds the library and usm-infer, then runs
# Tests/CAPI/test_capi.c on the bundled model and sample, expecting usm-infer's transcript, plainly and under
# AddressSanitizer with leak detection (the C side instrumented: every result, stream and recognizer freed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build --product usm 2>&1 | tail -1
swift build --product usm-infer 2>&1 | tail -1
bin=.build/debug
swiftlib=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
model=Models/usm-infer-default.usm
sample=Models/sample.wav
expected=$("$bin/usm-infer" --model "$model" "$sample")
out=$(mktemp -d)
for mode in plain asan; do
  flags=(-std=c11 -Wall -Wextra -Werror -O1 -g)
  [ "$mode" = asan ] && flags+=(-fsanitize=address -fno-omit-frame-pointer)
  cc "${flags[@]}" -I Sources/CUSMAPI/include Tests/CAPI/test_capi.c -o "$out/test_capi_$mode" \
     -L "$bin" -lusm -Wl,-rpath,"$PWD/$bin" -Wl,-rpath,"$swiftlib" -lpthread
  echo "== C API test ($mode)"
  ASAN_OPTIONS=detect_leaks=1 "$out/test_capi_$mode" "$model" "$sample" "$expected"
done
rm -rf "$out"
