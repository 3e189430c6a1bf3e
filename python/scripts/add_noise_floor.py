"""Bake a low white-noise floor (-80..-60 dBFS RMS, deterministic per file) into dev/test WAVs in place, so that
evaluation audio never contains digital silence (training features get the same kind of dither at extraction).
Idempotent via a marker file per split."""
import os
import sys
import zlib

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref.data import read_manifest  # noqa: E402

data = "/root/usm-data"
for split in ("dev", "test"):
    marker = os.path.join(data, "audio", split, ".noise_floor_done")
    if os.path.exists(marker):
        continue
    for uid, path, secs, text in read_manifest(os.path.join(data, f"{split}.tsv")):
        w, sr = sf.read(path, dtype="float64")
        rng = np.random.default_rng(zlib.crc32(uid.encode()))
        level = 10 ** (rng.uniform(-80, -60) / 20)
        w = np.clip(w + rng.standard_normal(w.shape) * level, -1, 32767 / 32768)
        sf.write(path, w, sr, subtype="PCM_16")
    open(marker, "w").write("ok\n")
    print(split, "done")
