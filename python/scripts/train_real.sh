#!/bin/sh
# Start or resume the issue-23 float run (`real` config: 10 x 192 Conformer, 10.1M parameters) on the v2 data
# (python/scripts/build_data.sh) in the background: one thread, nice 19, checkpoints every 100 steps.
#   sh python/scripts/train_real.sh [NAME] [extra usm_ref.train args]     (NAME defaults to real0)
# Resumes from $USM_DATA/ckpt/NAME/latest.pt. Log: $USM_DATA/ckpt/NAME/train.log (+ stdout.log); pid in run.pid.
# Feature shards added to $USM_DATA/feats/train later (a resumed build_data.sh) are picked up at each epoch start.
# Stop it with: kill $(cat $USM_DATA/ckpt/NAME/run.pid)
cd "$(dirname "$0")/.." || exit 1
USM_DATA=${USM_DATA:-/root/usm-data}
NAME=${1:-real0}
[ $# -gt 0 ] && shift
EXP="$USM_DATA/ckpt/$NAME"
mkdir -p "$EXP"
if [ -f "$EXP/run.pid" ] && kill -0 "$(cat "$EXP/run.pid")" 2>/dev/null; then
  echo "already running: pid $(cat "$EXP/run.pid") (log $EXP/train.log)"; exit 1
fi
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_ARENA_MAX=2 ONEDNN_PRIMITIVE_CACHE_CAPACITY=256 \
  nohup setsid nice -n 19 python3 -m usm_ref.train --data "$USM_DATA" --exp "$EXP" --config real \
  --tokenizer "$USM_DATA/tokenizer/spm256.model" --threads 1 \
  --max-frames 5000 --max-batch 48 --max-utt-frames 1200 --lr 1.5e-3 --warmup 1000 --specaug-start 1500 \
  --ckpt-every 100 --keep 3 --eval-every 500 --eval-utts 300 --eval-spread "$@" >> "$EXP/stdout.log" 2>&1 &
echo $! > "$EXP/run.pid"
echo "started pid $! -> $EXP/train.log"
