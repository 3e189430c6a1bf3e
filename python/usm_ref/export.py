"""Export a training checkpoint to plain files for the container packer:

  <out>/tensors.npz      Architecture.md section 6 names -> float32 arrays (BatchNorm folded, LSTM concatenated)
  <out>/architecture.json  the config (section 1)
  <out>/tokenizer.json   {"type": "sentencepiece", "pieces": [...], "blank_id": 0, "unk_id": 1} (section 8)

python -m usm_ref.export CKPT OUT_DIR [--tokenizer spm.model]
"""
import argparse
import os

import numpy as np
import torch

from .config import ModelConfig
from .model import ConformerRNNT, expected_export_shapes
from .data import data_root
from .tokenizer import Tokenizer


def load_checkpoint(path: str):
    """(config, eval-mode model, step) from a training checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ModelConfig.from_dict(ck["config"])
    m = ConformerRNNT(cfg)
    args = ck.get("args") or {}
    if args.get("recipe"):  # a QAT checkpoint: its encoder matrices are wrapped (the float weights stay latent)
        from .qat import apply_recipe
        apply_recipe(m, args["recipe"], scale_format=args.get("scale_format", "int8"))
    m.load_state_dict(ck["model"])
    m.eval()
    return cfg, m, ck.get("step")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default=data_root("tokenizer", "spm256.model"),
                    required=data_root() is None, help="SentencePiece model (default $USM_DATA/tokenizer/spm256.model)")
    args = ap.parse_args()
    cfg, m, step = load_checkpoint(args.ckpt)
    W = m.state_dict_for_export()
    want = expected_export_shapes(cfg)
    assert list(W) == list(want) and all(W[k].shape == want[k] for k in want)
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "tensors.npz"), **W)
    cfg.save(os.path.join(args.out, "architecture.json"))
    tok = Tokenizer(args.tokenizer)
    assert len(tok) == cfg.vocab_size
    tok.save_metadata(os.path.join(args.out, "tokenizer.json"))
    print(f"exported {len(W)} tensors, {sum(v.size for v in W.values())} values, step {step}")


if __name__ == "__main__":
    main()
