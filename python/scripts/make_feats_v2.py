"""Log-mel feature shards for the v2 data set (issue 23), with offline augmentation of the training audio.

python3 scripts/make_feats_v2.py [--data /root/usm-data] [--final] [--stats]

Groups (split <- manifest, tag, variants per utterance):
  train           <- so762-train.tsv      so762   clean + 3 augmented   (real speech)
  train           <- tts-prose-train.tsv  tprose  1 augmented
  train           <- tts-num-train.tsv    tnum    2 augmented            (numbers: the evaluation domain)
  dev             <- so762-dev.tsv, tts-dev.tsv                  clean
  test-synthetic  <- test-synthetic.tsv                          clean (held-out voices)
  so762-test      <- so762-test.tsv                              clean (evaluation only)
Augmentation: usm_ref.augment.augment (speed/tempo, pitch, simulated-room reverb, white/pink/brown/babble noise,
telephone band + mu-law, low-pass, gain), one numpy Generator per (utterance, variant) seeded from the id, babble
from the clean utterances of the same shard: rebuilding a shard gives the same features. Training and dev audio
also get a -90..-55 dBFS dither (test audio is used as is).

Shards: <data>/feats/<split>/shard_<tag>_<first>_<end>.{npy,tsv} over manifest lines [first, end); the .tsv is
written last and marks a complete shard. Resumable and append-friendly: the next shard starts at the largest
existing <end>; without --final only full shards (--shard-size lines) are written, so this can run while the
manifests are still growing. stats.npz (train per-bin mean/std) is written when missing or with --stats.
"""
import argparse
import glob
import os
import sys
import time
import zlib

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref import augment as A  # noqa: E402
from usm_ref.config import named_config  # noqa: E402
from usm_ref.data import read_manifest  # noqa: E402
from usm_ref.frontend import TorchLogMel  # noqa: E402

# split, manifest, tag, clean copy, augmented copies, dither
GROUPS = [
    ("dev", "so762-dev", "so762dev", True, 0, True),
    ("dev", "tts-dev", "ttsdev", True, 0, True),
    ("test-synthetic", "test-synthetic", "tsyn", True, 0, False),
    ("so762-test", "so762-test", "so762test", True, 0, False),
    ("train", "so762-train", "so762", True, 3, True),
    ("train", "tts-num-train", "tnum", False, 2, True),
    ("train", "tts-prose-train", "tprose", False, 1, True),
]


def uid_seed(uid: str, k: int) -> list:
    return [zlib.crc32(uid.encode()), k, 23]


def load_rirs(path: str, n: int = 300):
    if os.path.exists(path):
        z = np.load(path)
        return [z[k] for k in sorted(z.files)]
    rirs = A.room_rirs(n, seed=23)
    np.savez(path + ".tmp.npz", **{f"r{i:04d}": r for i, r in enumerate(rirs)})
    os.replace(path + ".tmp.npz", path)
    return rirs


def existing_end(out_dir: str, tag: str) -> int:
    end = 0
    for tsv in glob.glob(os.path.join(out_dir, f"shard_{tag}_*_*.tsv")):
        end = max(end, int(os.path.basename(tsv)[:-4].rsplit("_", 1)[1]))
    return end


def make_shard(rows, base, fe, clean, n_aug, dither, rirs, sr):
    pool = []  # clean waveforms of this shard for babble
    waves = []
    for uid, path, secs, text in rows:
        w, fs = sf.read(path, dtype="float32")
        if w.ndim > 1:
            w = w.mean(1)
        assert fs == sr, (path, fs)
        waves.append(w)
        if len(pool) < 64:
            pool.append(w)
    feats, lines, off = [], [], 0
    for (uid, path, secs, text), w in zip(rows, waves):
        variants = []
        if clean:
            variants.append((uid, w, np.random.default_rng(uid_seed(uid, 0))))
        for k in range(1, n_aug + 1):
            rng = np.random.default_rng(uid_seed(uid, k))
            others = [p for p in pool if p is not w] or pool
            y, desc = A.augment(w, rng, others, rirs)
            variants.append((f"{uid}~a{k}", y, rng))
        for vid, y, rng in variants:
            if dither:
                level = 10 ** (rng.uniform(-90, -55) / 20)
                y = y + rng.standard_normal(y.shape).astype(np.float32) * level
            f = fe(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))).numpy()
            feats.append(f)
            lines.append(f"{vid}\t{off}\t{f.shape[0]}\t{len(y) / sr:.3f}\t{text}\n")
            off += f.shape[0]
    np.save(base + ".npy", np.concatenate(feats).astype(np.float16))
    with open(base + ".tsv.tmp", "w") as fo:
        fo.writelines(lines)
    os.replace(base + ".tsv.tmp", base + ".tsv")
    return len(lines), off


def write_stats(data, mel_bins):
    from usm_ref.data import FeatureStore

    st = FeatureStore(os.path.join(data, "feats", "train"))
    s1, s2, n = np.zeros(mel_bins), np.zeros(mel_bins), 0
    for a in st.arrays:
        x = a.astype(np.float64)
        s1 += x.sum(0)
        s2 += (x * x).sum(0)
        n += x.shape[0]
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 1e-8))
    np.savez(os.path.join(data, "feats", "stats.npz"), mean=mean.astype(np.float32), std=std.astype(np.float32),
             frames=n)
    print("stats frames", n, "mean", mean.mean(), "std", std.mean(), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("USM_DATA", "/root/usm-data"))
    ap.add_argument("--config", default="trained", help="frontend settings (all named configs share them)")
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--final", action="store_true", help="also write the last partial shard of each manifest")
    ap.add_argument("--stats", action="store_true", help="(re)compute stats.npz")
    ap.add_argument("--only", default=None, help="comma-separated tags")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = named_config(args.config)
    fe = TorchLogMel(cfg.frontend, cfg.sample_rate)
    os.makedirs(os.path.join(args.data, "feats"), exist_ok=True)
    rirs = load_rirs(os.path.join(args.data, "feats", "rirs.npz"))
    for split, man_name, tag, clean, n_aug, dither in GROUPS:
        if args.only and tag not in args.only.split(","):
            continue
        man_path = os.path.join(args.data, f"{man_name}.tsv")
        if not os.path.exists(man_path):
            print("missing", man_path, flush=True)
            continue
        man = read_manifest(man_path)
        out_dir = os.path.join(args.data, "feats", split)
        os.makedirs(out_dir, exist_ok=True)
        start = existing_end(out_dir, tag)
        while start < len(man):
            end = min(start + args.shard_size, len(man))
            if end - start < args.shard_size and not args.final:
                break
            t0 = time.time()
            base = os.path.join(out_dir, f"shard_{tag}_{start:06d}_{end:06d}")
            n, frames = make_shard(man[start:end], base, fe, clean, n_aug, dither, rirs, cfg.sample_rate)
            print(split, tag, start, end, n, "utts", f"{frames / 360000:.2f} h", f"{time.time() - t0:.0f}s",
                  flush=True)
            start = end
    if args.stats or not os.path.exists(os.path.join(args.data, "feats", "stats.npz")):
        write_stats(args.data, cfg.frontend.mel_bins)


if __name__ == "__main__":
    main()
