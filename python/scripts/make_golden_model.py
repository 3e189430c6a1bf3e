"""Golden values for the Swift executor's parity tests (Tests/USMModelTests/Golden/).

A seeded random model at the `small` config (non-trivial BatchNorm statistics, u/v biases and per-dim scales), exported
at f32 and for quantization recipes (weights quantized with usm_ref.quant, the torch model then run with the
dequantized weights), and for a fixed waveform: features, subsampling output, block-0 output, encoder output, the
first joint logits and the greedy tokens. Needs torch. Run from the repo root:

    python3 python/scripts/make_golden_model.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref import container, quant  # noqa: E402
from usm_ref.config import named_config  # noqa: E402
from usm_ref.decode import greedy_search  # noqa: E402
from usm_ref.frontend import log_mel_np  # noqa: E402
from usm_ref.model import ConformerRNNT, length_mask  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "USMModelTests", "Golden")
# recipe -> (scheme, block, scale format) for the encoder matrices (Architecture.md section 7)
RECIPES = {"f32": None, "exp5": ("bin", 64, "int8"), "int4": ("int4", 0, "f32"), "exp1": ("int2", 0, "f32"),
           "exp2": ("int2", 64, "int8", "search"), "exp3": ("bin_asym", 0, "f32"), "exp4": ("bin", 0, "f32"),
           "int8": ("int8", 0, "int8-row")}
from usm_ref.recipes import ENCODER_MATRIX_SUFFIXES as ENCODER_MATRICES  # noqa: E402


@torch.no_grad()
def build_model(cfg):
    torch.manual_seed(1234)
    m = ConformerRNNT(cfg, dropout=0.0)
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for mod in m.modules():
            if hasattr(mod, "running_mean") and mod.running_mean is not None:
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                if getattr(mod, "weight", None) is not None:
                    mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
        for layer in m.encoder.layers:
            a = layer.mhsa
            a.u.copy_(0.1 * torch.randn(a.u.shape, generator=g))
            a.v.copy_(0.1 * torch.randn(a.v.shape, generator=g))
            a.per_dim_scale.copy_(0.2 * torch.randn(a.per_dim_scale.shape, generator=g))
            for ln in (layer.ffn1.norm, layer.mhsa.norm, layer.conv.norm, layer.ffn2.norm, layer.final_norm):
                ln.weight.copy_(1 + 0.1 * torch.randn(ln.weight.shape, generator=g))
                ln.bias.copy_(0.1 * torch.randn(ln.bias.shape, generator=g))
    mel = cfg.frontend.mel_bins
    m.set_normalisation(np.linspace(-8, -4, mel), np.linspace(2, 3, mel))
    return m.eval()


def waveform():
    rng = np.random.default_rng(7)
    t = np.arange(int(1.37 * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t + 1)
    return (x + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def tokenizer(vocab):
    return {"type": "sentencepiece", "blank_id": 0, "unk_id": 1,
            "pieces": ["<blank>", "<unk>"] + [("\u2581" if i % 3 == 0 else "") + f"p{i}" for i in range(2, vocab)]}


@torch.no_grad()
def run(m, cfg, samples):
    feats = log_mel_np(samples, cfg.frontend)
    x = torch.from_numpy(feats)[None]
    lengths = torch.tensor([feats.shape[0]])
    enc = m.encoder
    normed = (x - enc.mean) / enc.std
    sub, sub_len = enc.subsampling(normed, lengths)
    mask = length_mask(sub_len, sub.shape[1])
    block0 = enc.layers[0](sub, sub_len, mask)
    out, _ = m.encoder(x, lengths)
    # first joint logits: frame 0 with the start state
    start, _ = m.predictor(torch.tensor([[cfg.blank_id]]))
    logits0 = m.joint.out(torch.tanh(m.joint.enc_proj(out[0, 0]) + m.joint.pred_proj(start[0, 0])))
    tokens = greedy_search(m, out[0])
    return {"features": normed[0].numpy(), "subsampling": sub[0].numpy(), "block0": block0[0].numpy(),
            "encoder": out[0].numpy(), "joint0": logits0.numpy(), "tokens": np.array(tokens, np.float32)}


def main(out=OUT):
    cfg = named_config("small")
    samples = waveform()
    base = build_model(cfg)
    weights = base.state_dict_for_export()
    for recipe, spec in RECIPES.items():
        m = build_model(cfg)
        packed = {}
        for name, w in weights.items():
            if spec and name.startswith("encoder.") and name.endswith(ENCODER_MATRICES):
                packed[name] = quant.quantize(w, spec[0], spec[1], spec[2], spec[3] if len(spec) > 3 else "none")
                deq = torch.from_numpy(packed[name].dequantize())
                module = m
                for part in name.split(".")[:-1]:
                    module = module[int(part)] if part.isdigit() else getattr(module, part)
                with torch.no_grad():
                    module.weight.copy_(deq)
            else:
                packed[name] = quant.quantize(w, "f32")
        golden = run(m, cfg, samples)
        meta = {"architecture": cfg.to_dict(), "tokenizer": tokenizer(cfg.vocab_size),
                "provenance": {"tool": "python/scripts/make_golden_model.py", "created": "fixed",
                               "source": f"random small model, seed 1234, recipe {recipe}"}}
        container.write(os.path.join(out, f"small-{recipe}.usm"), packed, meta, level=19)
        g = {"audio": quant.quantize(samples, "f32")}
        g.update({k: quant.quantize(np.ascontiguousarray(v.reshape(-1) if v.ndim == 0 else v), "f32")
                  for k, v in golden.items() if v.size})
        container.write(os.path.join(out, f"golden-{recipe}.usm"), g, {"architecture": {}}, level=19)
        print(recipe, {k: v.shape for k, v in golden.items()}, "tokens", golden["tokens"][:12].astype(int).tolist())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else OUT)
