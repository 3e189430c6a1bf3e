#!/usr/bin/env bash
# Writes the container seeds of the fuzz targets (Fuzz/Seeds/Models): random-weight models of the tiny named
# architectures (a few KB to tens of KB each), one per decoder kind and weight scheme, so that a fuzz execution loads
# a whole model in well under a millisecond of uninstrumented time. The files are checked in; rerun this after a
# change to the container format or the tiny architectures.
#   bash scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build --product usm-pack >/dev/null
pack="$(swift build --show-bin-path)/usm-pack"
out=Fuzz/Seeds/Models
rm -rf "$out" && mkdir -p "$out"
synth() {  # ARCH RECIPE [BLOCK]
  local block=(); [ -n "${3:-}" ] && block=(--block "$3")
  "$pack" synth --config "$1" --recipe "$2" "${block[@]}" --scale-format int8 --seed 1 "$out/$1-$2.usm"
}
for r in exp0 int8 int4 exp1; do synth tiny $r; done
for r in int4-b64 exp2 exp5; do synth tiny $r 16; done
synth tiny-fastconformer-tdt exp0
synth tiny-fastconformer-tdt exp5 16
synth tiny-conformer-rnnt int4
synth tiny-conformer-rnnt exp2 16
ls -l "$out"
