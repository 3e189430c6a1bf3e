"""Precompute log-mel features (before per-bin normalisation) into float16 shards; train-set mean/std.

Resumable: existing shards are skipped. Without --final only complete shards are written (so this can run
while synthesis is still appending to the manifests). Train (and dev) waveforms get a small random white-noise
dither (-90..-55 dBFS RMS) before the frontend so that digital silence never hits the log floor exactly.
"""
import argparse
import os
import sys

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref.config import named_config  # noqa: E402
from usm_ref.data import read_manifest  # noqa: E402
from usm_ref.frontend import TorchLogMel  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/root/usm-data")
    ap.add_argument("--config", default="trained")
    ap.add_argument("--splits", default="dev,test,train")
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--final", action="store_true", help="also write the last partial shard, then stats")
    ap.add_argument("--stats-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = named_config(args.config)
    fe = TorchLogMel(cfg.frontend, cfg.sample_rate)
    for split in args.splits.split(","):
        if args.stats_only:
            break
        man = read_manifest(os.path.join(args.data, f"{split}.tsv"))
        out_dir = os.path.join(args.data, "feats", split)
        os.makedirs(out_dir, exist_ok=True)
        n_shards = (len(man) + args.shard_size - 1) // args.shard_size
        for k in range(n_shards):
            rows = man[k * args.shard_size:(k + 1) * args.shard_size]
            base = os.path.join(out_dir, f"shard_{k:04d}")
            if os.path.exists(base + ".tsv"):
                continue
            if len(rows) < args.shard_size and not args.final:
                break
            rng = np.random.default_rng(1000 + k + (0 if split == "train" else 500000))
            feats, lines, off = [], [], 0
            for uid, path, secs, text in rows:
                w, sr = sf.read(path, dtype="float32")
                assert sr == cfg.sample_rate, (path, sr)
                if split != "test":
                    level = 10 ** (rng.uniform(-90, -55) / 20)
                    w = w + rng.standard_normal(w.shape).astype(np.float32) * level
                f = fe(torch.from_numpy(w)).numpy()
                feats.append(f)
                lines.append(f"{uid}\t{off}\t{f.shape[0]}\t{secs:.3f}\t{text}\n")
                off += f.shape[0]
            np.save(base + ".npy", np.concatenate(feats).astype(np.float16))
            with open(base + ".tsv.tmp", "w") as fo:
                fo.writelines(lines)
            os.replace(base + ".tsv.tmp", base + ".tsv")  # the .tsv marks a complete shard
            print(split, k, len(rows), off, flush=True)
    if args.final or args.stats_only:
        from make_feats_v2 import write_stats  # the same statistics for both feature pipelines

        write_stats(args.data, cfg.frontend.mel_bins)


if __name__ == "__main__":
    main()
