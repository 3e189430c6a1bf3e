#!/bin/sh
# Start or resume exp0 (float RNN-T, `trained` config). Resumes from /root/usm-data/ckpt/exp0/latest.pt.
export USM_DATA="${USM_DATA:-/root/usm-data}"  # the pipeline's data folder (usm_ref.train reads it)
cd "$(dirname "$0")/.." || exit 1
mkdir -p /root/usm-data/ckpt/exp0
MALLOC_ARENA_MAX=2 ONEDNN_PRIMITIVE_CACHE_CAPACITY=256 exec nohup setsid nice -n 10 python3 -m usm_ref.train --exp /root/usm-data/ckpt/exp0 --config trained \
  --max-frames 5000 --max-batch 48 --lr 1.5e-3 --warmup 600 --specaug-start 1500 \
  --ckpt-every 100 --eval-every 500 --eval-utts 100 "$@" >> /root/usm-data/ckpt/exp0/stdout.log 2>&1 &
