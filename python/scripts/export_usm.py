"""Export a training checkpoint to a usm-infer container (ModelFormat.md), f32 or packed with a recipe.

    python3 python/scripts/export_usm.py CKPT OUT.usm [--tokenizer tokenizer.json] [--recipe exp5 --scale-format int8]

The tensors are those of Architecture.md section 6 (BatchNorm folded, LSTM weights concatenated). A recipe packs the
encoder matrices (section 7) with usm_ref.quant, the same math as `usm-pack quantize`; for a QAT checkpoint this
reproduces the weights the training forward pass used.
"""
import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref import container, quant  # noqa: E402
from usm_ref.export import load_checkpoint  # noqa: E402
from usm_ref.model import expected_export_shapes  # noqa: E402
from usm_ref.qat import RECIPES as QAT_RECIPES  # noqa: E402

from usm_ref.recipes import ENCODER_MATRIX_SUFFIXES as ENCODER_MATRICES  # noqa: E402
RECIPES = {"exp0": None, **QAT_RECIPES}  # scheme, block, clip: the same table QAT trains with


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default="/root/usm-data/tokenizer/tokenizer.json")
    ap.add_argument("--recipe", default="exp0", choices=sorted(RECIPES))
    ap.add_argument("--scale-format", default="f32", choices=["f32", "int8", "int8-row"])
    ap.add_argument("--level", type=int, default=19)
    args = ap.parse_args()
    cfg, m, step = load_checkpoint(args.ckpt)
    weights = m.state_dict_for_export()
    want = expected_export_shapes(cfg)
    assert list(weights) == list(want) and all(weights[k].shape == want[k] for k in want)
    with open(args.tokenizer) as f:
        tokenizer = json.load(f)
    assert len(tokenizer["pieces"]) == cfg.vocab_size
    spec = RECIPES[args.recipe]
    tensors, record = {}, {}
    for name, w in weights.items():
        if spec and name.startswith("encoder.") and name.endswith(ENCODER_MATRICES):
            scheme, block, clip = spec
            tensors[name] = quant.quantize(w, scheme, block, args.scale_format, clip)
            record[name] = {"scheme": scheme, "block_size": block, "scale_format": args.scale_format, "clip": clip}
        else:
            tensors[name] = quant.quantize(w, "f32")
    meta = {
        "architecture": cfg.to_dict(),
        "tokenizer": tokenizer,
        "quantization": {"recipe": args.recipe, "scale_format": args.scale_format,
                         "block_size": spec[1] if spec else 0, "tensors": record},
        "provenance": {"tool": "python/scripts/export_usm.py",
                       "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "source": f"{os.path.basename(args.ckpt)} step {step}"},
    }
    n = container.write(args.out, tensors, meta, level=args.level)
    print(f"wrote {args.out}: {n} bytes, {len(tensors)} tensors, recipe {args.recipe}, step {step}")


if __name__ == "__main__":
    main()
