#!/bin/sh
# QAT sweep (issue 5, the paper's Table 2 at small scale). Every run starts from the same float checkpoint BASE and
# trains STEPS more steps with the same fine-tuning schedule; `exp0ft` is the float control (no fake quantization),
# so each recipe is compared with a float model that had exactly the same extra training.
#
#   sh python/scripts/qat_sweep.sh BASE.pt STEPS [RUN...]     (default runs: exp5 int4 exp1 exp0ft exp4 exp2 exp3)
#
# Runs go one after another (two cores fit one training) into /root/usm-data/ckpt/qat-RUN; a finished run
# (step_STEPS.pt present) is skipped, an interrupted one resumes. Starts in the background; log: qat-sweep.log.
export USM_DATA="${USM_DATA:-/root/usm-data}"  # the pipeline's data folder (usm_ref.train reads it)
set -u
cd "$(dirname "$0")/.." || exit 1
if [ -z "${QAT_SWEEP_CHILD:-}" ]; then  # detach from the terminal/session so the sweep outlives it
  QAT_SWEEP_CHILD=1 setsid nohup sh "$(pwd)/scripts/qat_sweep.sh" "$@" > /dev/null 2>&1 < /dev/null &
  echo "sweep started in the background; log /root/usm-data/ckpt/qat-sweep.log"
  exit 0
fi
BASE=$1
STEPS=$2
shift 2
RUNS=${*:-"exp5 int4 exp1 exp0ft exp4 exp2 exp3"}
ROOT=/root/usm-data/ckpt
mkdir -p "$ROOT"
{
  for R in $RUNS; do
    EXP="$ROOT/qat-$R"
    FINAL=$(printf '%s/step_%07d.pt' "$EXP" "$STEPS")
    if [ -e "$FINAL" ]; then echo "$(date '+%F %T') $R done already"; continue; fi
    if [ "$R" = exp0ft ]; then RECIPE=""; else RECIPE="--recipe $R --scale-format int8"; fi
    echo "$(date '+%F %T') start $R"
    # shellcheck disable=SC2086
    MALLOC_ARENA_MAX=2 ONEDNN_PRIMITIVE_CACHE_CAPACITY=256 python3 -m usm_ref.train --exp "$EXP" \
      --config trained --init "$BASE" $RECIPE --max-steps "$STEPS" \
      --max-frames 5000 --max-batch 48 --lr 5e-4 --warmup 50 --specaug-start 0 \
      --threads "${QAT_THREADS:-1}" --ckpt-every 100 --eval-every "$STEPS" --eval-utts 100 >> "$EXP.stdout.log" 2>&1
    echo "$(date '+%F %T') end $R rc $?"
  done
} >> "$ROOT/qat-sweep.log" 2>&1
