"""The quantization recipes and the encoder matrices they pack: read from recipes.json, which the Swift runtime
writes (`usm-pack recipes --json`) and its tests check, so Swift and Python share one table."""
from __future__ import annotations

import json
import os

with open(os.path.join(os.path.dirname(__file__), "recipes.json"), encoding="utf-8") as _f:
    TABLE = json.load(_f)

# recipe -> (scheme, block size, clip) of its encoder matrices, for the recipes that pack the encoder only
# (QAT trains the encoder; the -dec recipes also pack the decoder at export time in Swift)
RECIPES = {r["name"]: (r["encoder"]["scheme"], int(r["encoder"]["block"]), r["encoder"]["clip"])
           for r in TABLE["recipes"] if r["encoder"] is not None and r["decoder"] is None}

# weight names of one encoder layer relative to `encoder.layers.<i>.`, e.g. "mhsa.query.weight"
ENCODER_MATRIX_NAMES = tuple(TABLE["encoder_matrices"])
# the same as weight-name suffixes (".query.weight") and as module names ("query")
ENCODER_MATRIX_SUFFIXES = tuple(sorted({"." + n.split(".")[-2] + ".weight" for n in ENCODER_MATRIX_NAMES}))
ENCODER_MATRIX_MODULES = tuple(sorted({n.split(".")[-2] for n in ENCODER_MATRIX_NAMES}))
