#!/usr/bin/env bash
# The main job until the executor lands: build usm-pack, write a USM-1B-shaped model with random weights packed with
# the paper's best binary recipe (Exp5: 1-bit absmean, sub-channel blocks of 64, int8 scales), then verify and
# inspect it. Prints the size accounting beside the paper's Table 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product usm-pack
out="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out"
bin=.build/release/usm-pack
"$bin" synth --config usm-1b --recipe exp5 --scale-format int8 "$out/usm-1b-exp5.usm"
echo
"$bin" inspect "$out/usm-1b-exp5.usm" | head -n 5
