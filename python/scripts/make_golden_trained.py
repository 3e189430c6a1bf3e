"""Golden values of the trained default model (Tests/USMModelTests/Golden/golden-trained.usm).

The QAT checkpoint behind Models/usm-infer-default.usm is run in PyTorch (its forward pass fake-quantizes the encoder
matrices, exactly as in training) on the bundled sample (Models/sample.wav, a held-out espeak voice), and the same values as make_golden_model.py are stored:
features, subsampling output, block-0 output, encoder output, the first joint logits and the greedy tokens. The Swift
parity test runs the bundled container on the same audio and compares. Needs torch. Run from the repo root:

    python3 python/scripts/make_golden_trained.py CKPT [--wav Models/sample.wav] [--out Tests/USMModelTests/Golden]
"""
import argparse
import os
import sys

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from make_golden_model import OUT, run  # noqa: E402
from usm_ref import container, quant  # noqa: E402
from usm_ref.export import load_checkpoint  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--wav", default=os.path.join(ROOT, "Models", "sample.wav"))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    cfg, m, step = load_checkpoint(args.ckpt)
    samples, rate = sf.read(args.wav, dtype="float32")
    assert rate == cfg.sample_rate and samples.ndim == 1, (rate, samples.shape)
    golden = run(m, cfg, samples)
    g = {"audio": quant.quantize(samples, "f32")}
    g.update({k: quant.quantize(np.ascontiguousarray(v), "f32") for k, v in golden.items() if v.size})
    meta = {"architecture": {}, "provenance": {"tool": "python/scripts/make_golden_trained.py", "created": "fixed",
                                               "source": f"{os.path.basename(args.ckpt)} step {step}"}}
    path = os.path.join(args.out, "golden-trained.usm")
    container.write(path, g, meta, level=19)
    print(path, {k: v.shape for k, v in golden.items()}, "tokens", golden["tokens"].astype(int).tolist())


if __name__ == "__main__":
    main()
