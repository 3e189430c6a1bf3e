#!/bin/sh
# Build the issue-23 training data in one command: real speech (speechocean762 train half) + varied synthetic
# speech (espeak-ng, flite, Festival; prose + spoken numbers) + offline augmentation -> feature shards + stats,
# tokenizer, manifests. Resumable and idempotent: rerun it to continue after an interruption or a --minutes stop.
#
#   sh python/scripts/build_data.sh [SO762_GIT_DIR]
#
# Environment (defaults):
#   USM_DATA=/root/usm-data       everything is written here (never into git)
#   SO762_REPO=/work/.mirror/jimbozhang+speechocean762/repo   git snapshot of github.com/jimbozhang/speechocean762
#   N_PROSE=30000  N_NUMBERS=8000 training utterances to synthesize (capped by the sentences available)
#   SYNTH_MINUTES=1000000         stop synthesis (resumably) after this many minutes; features use what exists
#   SKIP_INSTALL=1                skip apt-get / pip
# Outputs (under $USM_DATA): so762-{train,dev,test}.tsv, tts-{prose,num}-train.tsv, tts-dev.tsv,
# test-synthetic.tsv, train.tsv / dev.tsv (combined training / dev manifests), text/, tokenizer/spm256.model,
# feats/{train,dev,test-synthetic,so762-test}/shard_*, feats/stats.npz, logs/build_data.log.
# Never used for training or tuning: speechocean762 test half, /work/shared/data/asterisk-dev, Asterisk prompts,
# pocketsphinx test data, test audio shipped in PyPI packages, LibriSpeech/LibriVox (docs/data/PROVENANCE.md).
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
USM_DATA=${USM_DATA:-/root/usm-data}
SO762_REPO=${1:-${SO762_REPO:-/work/.mirror/jimbozhang+speechocean762/repo}}
N_PROSE=${N_PROSE:-30000}
N_NUMBERS=${N_NUMBERS:-8000}
SYNTH_MINUTES=${SYNTH_MINUTES:-1000000}
export USM_DATA SO762_REPO
mkdir -p "$USM_DATA/logs" "$USM_DATA/text" "$USM_DATA/tokenizer"
PY="nice -n 19 python3"
say() { echo "== $(date -u '+%F %T') $*"; }

if [ ! -d "$SO762_REPO" ]; then
  echo "error: speechocean762 git snapshot not found at $SO762_REPO" >&2
  echo "fetch the snapshot of github.com/jimbozhang/speechocean762 first (mirror tool -> /work/.mirror/jimbozhang+speechocean762/repo)," >&2
  echo "or pass its git directory as the first argument / SO762_REPO" >&2
  exit 2
fi

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  APT_PKGS="espeak-ng flite sox festival festvox-kdlpc16k festvox-kallpc16k festvox-us-slt-hts fortunes fortunes-min \
debian-reference-en python3-doc wamerican debian-handbook developers-reference maint-guide git"
  missing=""
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    say "apt-get install$missing"
    [ -f "$USM_DATA/logs/.apt-updated" ] || { apt-get update && touch "$USM_DATA/logs/.apt-updated"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  fi
  # torchaudio 2.11.x is built against torch's stable ABI ("torch>=2.11, including all future releases") and still
  # ships functional.rnnt_loss, used by usm_ref.train
  python3 -c "import torch, torchaudio.functional as F, sentencepiece, soundfile, scipy, pyroomacoustics; F.rnnt_loss" 2>/dev/null || {
    say "pip install"
    pip install --break-system-packages "torch>=2.11" "torchaudio>=2.11,<2.12" sentencepiece soundfile scipy pyroomacoustics pytest
  }
fi

say "speechocean762"
$PY scripts/prepare_so762.py --repo "$SO762_REPO" --data "$USM_DATA"

say "text corpus"
[ -s "$USM_DATA/text/sentences-v2.tsv" ] || $PY scripts/build_corpus.py "$USM_DATA/text/sentences-v2.tsv" --v2

say "synthesis (resumable; train_text.txt = training text only)"
$PY scripts/synth_tts.py --data "$USM_DATA" --n-prose "$N_PROSE" --n-numbers "$N_NUMBERS" --minutes "$SYNTH_MINUTES"

say "tokenizer (training text only)"
if [ ! -s "$USM_DATA/tokenizer/spm256.model" ]; then
  $PY -c "from usm_ref.tokenizer import train_tokenizer as t; t('$USM_DATA/text/train_text.txt', '$USM_DATA/tokenizer/spm256', 256)"
fi

say "combined manifests"
cat "$USM_DATA/so762-train.tsv" "$USM_DATA/tts-prose-train.tsv" "$USM_DATA/tts-num-train.tsv" > "$USM_DATA/train.tsv.tmp"
mv "$USM_DATA/train.tsv.tmp" "$USM_DATA/train.tsv"
cat "$USM_DATA/so762-dev.tsv" "$USM_DATA/tts-dev.tsv" > "$USM_DATA/dev.tsv.tmp" && mv "$USM_DATA/dev.tsv.tmp" "$USM_DATA/dev.tsv"

say "features + augmentation"
$PY scripts/make_feats_v2.py --data "$USM_DATA" --final
if [ ! -f "$USM_DATA/feats/.stats_final" ] || [ "$USM_DATA/feats/train" -nt "$USM_DATA/feats/.stats_final" ]; then
  $PY scripts/make_feats_v2.py --data "$USM_DATA" --stats --only none
  touch "$USM_DATA/feats/.stats_final"
fi

say "summary"
$PY scripts/data_summary.py --data "$USM_DATA" | tee "$USM_DATA/logs/data_summary.md"
say "done"
