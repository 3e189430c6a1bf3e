#!/usr/bin/env bash
# The main job: build usm-infer and transcribe the bundled sample (Models/sample.wav, a held-out synthetic voice) with
# the bundled default model (Models/usm-infer-default.usm: the trained small Conformer RNN-T, Exp5 = 1-bit encoder
# with sub-channel blocks of 64 and int8 scales). Prints the transcript, the reference, the model's size and the
# load and per-stage latency.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product usm-infer
bin=.build/release/usm-infer
sample="${1:-Models/sample.wav}"
echo
text=$("$bin" --timings "$sample")  # the size and timing lines go to stderr
echo "transcript: $text"
if [ "$sample" = Models/sample.wav ]; then echo "reference:  $(cat Models/sample.txt)"; fi
