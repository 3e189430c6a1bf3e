"""Manifests and precomputed feature shards.

Shard layout under <feats>/<split>/: `shard_KKKK.npy` (float16 [sum frames, mel_bins], log-mel before the
per-bin normalisation) and `shard_KKKK.tsv` (id, offset, frames, seconds, text), shard K = manifest lines
[K*shard_size, (K+1)*shard_size). `stats.npz` (mean, std, frames) holds the train-set per-bin statistics.
"""
from __future__ import annotations

import glob
import os

import numpy as np


def read_manifest(path: str):
    out = []
    with open(path) as f:
        for ln in f:
            parts = ln.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue  # a partially written last line
            out.append((parts[0], parts[1], float(parts[2]), parts[3]))
    return out


class FeatureStore:
    """All shards of one split, loaded in memory (float16)."""

    def __init__(self, split_dir: str):
        self.split_dir = split_dir
        self.ids, self.texts, self.seconds, self.frames, self.arrays, self.where = [], [], [], [], [], []
        self.loaded = set()
        self.refresh()

    def refresh(self) -> int:
        """Load shards that appeared since the last call; returns number of new utterances."""
        added = 0
        for tsv in sorted(glob.glob(os.path.join(self.split_dir, "shard_*.tsv"))):
            if tsv in self.loaded or not os.path.exists(tsv[:-4] + ".npy"):
                continue
            arr = np.load(tsv[:-4] + ".npy", mmap_mode=None)
            a = len(self.arrays)
            self.arrays.append(arr)
            for ln in open(tsv):
                uid, off, n, secs, text = ln.rstrip("\n").split("\t")
                self.ids.append(uid)
                self.texts.append(text)
                self.seconds.append(float(secs))
                self.frames.append(int(n))
                self.where.append((a, int(off)))
                added += 1
            self.loaded.add(tsv)
        return added

    def __len__(self):
        return len(self.ids)

    def feats(self, i: int) -> np.ndarray:
        a, off = self.where[i]
        return self.arrays[a][off:off + self.frames[i]]


def data_root(*parts: str):
    """A path under $USM_DATA (the data folder of the training pipeline), or None when the variable is unset: the
    package has no built-in data location, so command-line tools then require the path as an argument."""
    import os
    root = os.environ.get("USM_DATA")
    return os.path.join(root, *parts) if root else None
