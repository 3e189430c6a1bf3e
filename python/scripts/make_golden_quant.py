"""Writes Tests/USMFormatTests/Golden/python-quant.usm: f32 inputs and their quantized forms made by usm_ref.quant,
for the Swift cross-check (Swift reads the container and requantizes the inputs; the bytes must match).

Run from the repo root: python3 python/scripts/make_golden_quant.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref import container, quant  # noqa: E402

CASES = [
    ("int8-ch", "int8", 0, "f32", "none"),
    ("int4-ch", "int4", 0, "f32", "none"),
    ("int4-b64-int8", "int4", 64, "int8", "none"),
    ("int4-b32-search", "int4", 32, "f32", "search"),
    ("int4-clip0.8", "int4", 0, "f32", 0.8),
    ("exp1-int2-ch", "int2", 0, "f32", "none"),
    ("exp2-int2-b64-search-int8", "int2", 64, "int8", "search"),
    ("int2-b64-int8row", "int2", 64, "int8-row", "none"),
    ("exp3-binasym-ch", "bin_asym", 0, "f32", "none"),
    ("binasym-b8-int8row", "bin_asym", 8, "int8-row", "none"),
    ("exp4-bin-ch", "bin", 0, "f32", "none"),
    ("exp5-bin-b64-int8", "bin", 64, "int8", "none"),
    ("binnorm-b64", "bin_norm", 64, "f32", "none"),
]


def main():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    out = os.path.join(root, "Tests", "USMFormatTests", "Golden", "python-quant.usm")
    rng = np.random.default_rng(20261121)
    tensors, cases = {}, {}
    for i, (name, scheme, block, fmt, clip) in enumerate(CASES):
        w = rng.standard_normal((5, 200)).astype(np.float32) * np.float32(0.05 * (i + 1))
        w[0, :7] = 0  # zeros: bin maps them to +1
        w[1, 3] = 1.5  # an outlier, so clipping matters
        w[2, 100:164] = 0.25  # a constant block
        tensors[f"src/{name}"] = quant.quantize(w, "f32")
        tensors[f"q/{name}"] = quant.quantize(w, scheme, block, fmt, clip)
        cases[name] = {"scheme": scheme, "block_size": block, "scale_format": fmt, "clip": str(clip)}
    tensors["f32/rank3"] = quant.quantize(np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7, "f32")
    meta = {"architecture": {}, "golden": cases,
            "provenance": {"tool": "python/scripts/make_golden_quant.py", "created": "fixed", "source": "seed 20261121"}}
    n = container.write(out, tensors, meta, level=3)
    print(f"wrote {out}: {n} bytes, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
