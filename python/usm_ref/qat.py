"""Quantization-aware training: fake quantization with a straight-through estimator for every recipe of
ModelFormat.md, the same math as usm_ref.quant (numpy) and Swift's USMTensor.Quantizer.

The forward pass sees the dequantized weight the container will hold (codes x scales - zero points, scales
possibly rounded to int8); the backward pass treats quantization as the identity (STE), as praxis does.

    from usm_ref.qat import apply_recipe
    apply_recipe(model, "exp5", scale_format="int8")   # wraps the encoder matrices of Architecture.md section 7
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

QMAX = {"int8": 127.0, "int4": 7.0, "int2": 3.0, "bin_asym": 1.0}
QMIN = {"int8": -128.0, "int4": -8.0, "int2": 0.0, "bin_asym": 0.0}
ASYMMETRIC = {"int2", "bin_asym"}
SEARCH_GRID = [(20 - i) / 20 for i in range(11)]
from .recipes import ENCODER_MATRIX_MODULES as ENCODER_MATRICES, RECIPES  # noqa: E402  (one table with Swift)


def _blocks(w: torch.Tensor, block: int):
    """[rows, K] -> list of [rows, n] column blocks (the last may be partial)."""
    k = w.shape[1]
    b = block or k
    return [w[:, j:min(j + b, k)] for j in range(0, k, b)]


def _round(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x)  # torch.round is round-half-to-even, like numpy and Swift's .toNearestOrEven


def _int8_meta(v: torch.Tensor, signed: bool, per_row: bool) -> torch.Tensor:
    """Double quantization of scales (u8, factor max/255) or zero points (i8, factor max|zp|/127)."""
    groups = v if per_row else v.reshape(1, -1)
    if signed:
        f = groups.abs().amax(dim=1, keepdim=True) / 127.0
        q = torch.where(f > 0, torch.clamp(_round(groups / f), -127, 127), torch.zeros_like(groups))
    else:
        f = groups.amax(dim=1, keepdim=True) / 255.0
        q = torch.where(f > 0, torch.clamp(_round(groups / f), 0, 255), torch.zeros_like(groups))
    return (q * f).reshape(v.shape)


@torch.no_grad()
def fake_quantize(w: torch.Tensor, scheme: str, block: int = 0, scale_format: str = "f32", clip="none") -> torch.Tensor:
    """The dequantized weight of ModelFormat.md section 6 (no gradient; see FakeQuantLinear for the STE)."""
    w = w.detach().to(torch.float32)
    rows = w.shape[0]
    blocks = _blocks(w, block)
    scales, zps, zpfs, means = [], [], [], []
    for b in blocks:
        n = b.shape[1]
        if scheme == "bin":
            s = (b.abs().to(torch.float64).sum(dim=1) / n).to(torch.float32)
            scales.append(s); zps.append(torch.zeros(rows)); zpfs.append(torch.zeros(rows)); means.append(torch.zeros(rows))
        elif scheme == "bin_norm":
            m = (b.to(torch.float64).sum(dim=1) / n).to(torch.float32)
            s = ((b - m[:, None]).abs().to(torch.float64).sum(dim=1) / n).to(torch.float32)
            scales.append(s); zps.append(torch.zeros(rows)); zpfs.append(torch.zeros(rows)); means.append(m)
        else:
            best = None
            coeffs = SEARCH_GRID if clip == "search" else [1.0 if clip in (None, "none") else float(clip)]
            for c in coeffs:
                p = _clipped(b, scheme, torch.tensor(c, dtype=torch.float32))
                err = (b - _reconstruct(b, scheme, *p)).abs().to(torch.float64).sum(dim=1) / n
                if best is None:
                    best = [t.clone() for t in p] + [err]
                else:
                    better = err < best[3]
                    for t, u in zip(best[:3], p):
                        t[better] = u[better]
                    best[3] = torch.where(better, err, best[3])
            scales.append(best[0]); zpfs.append(best[1]); zps.append(best[2]); means.append(torch.zeros(rows))
    s = torch.stack(scales, dim=1)
    zp = torch.stack(zps, dim=1)
    zpf = torch.stack(zpfs, dim=1)
    if scale_format != "f32":
        per_row = scale_format == "int8-row"
        s = _int8_meta(s, False, per_row)
        if scheme in ASYMMETRIC:
            zp = _int8_meta(zp, True, per_row)
            zpf = torch.where(s > 0, zp / s, torch.zeros_like(s))
    out = []
    for j, b in enumerate(blocks):
        sj, zpj, zpfj = s[:, j:j + 1], zp[:, j:j + 1], zpf[:, j:j + 1]
        if scheme == "bin":
            out.append(torch.where(b >= 0, 1.0, -1.0) * sj)
        elif scheme == "bin_norm":
            out.append(torch.where(b - means[j][:, None] >= 0, 1.0, -1.0) * sj)
        elif scheme in ASYMMETRIC:
            q = torch.where(sj > 0, torch.clamp(_round(b / sj + zpfj), QMIN[scheme], QMAX[scheme]), torch.zeros_like(b))
            out.append(q * sj - zpj)
        else:
            q = torch.where(sj > 0, torch.clamp(_round(b / sj), QMIN[scheme], QMAX[scheme]), torch.zeros_like(b))
            out.append(q * sj)
    return torch.cat(out, dim=1)


def _clipped(b, scheme, c):
    qmax = QMAX[scheme]
    if scheme in ASYMMETRIC:
        lo, hi = b.amin(dim=1) * c, b.amax(dim=1) * c
        s = (hi - lo) / qmax
        zpf = torch.where(s == 0, torch.zeros_like(s), 0.0 - lo / torch.where(s == 0, torch.ones_like(s), s))
        zp = torch.where(s == 0, -lo, s * zpf)
        return s, zpf, zp
    s = c * b.abs().amax(dim=1) / qmax
    return s, torch.zeros_like(s), torch.zeros_like(s)


def _reconstruct(b, scheme, s, zpf, zp):
    s, zpf, zp = s[:, None], zpf[:, None], zp[:, None]
    safe = torch.where(s == 0, torch.ones_like(s), s)
    if scheme in ASYMMETRIC:
        q = torch.clamp(_round(b / safe + zpf), QMIN[scheme], QMAX[scheme])
        return torch.where(s == 0, -zp.expand_as(b), q * s - zp)
    q = torch.clamp(_round(b / safe), QMIN[scheme], QMAX[scheme])
    return torch.where(s == 0, torch.zeros_like(b), q * s)


class FakeQuantLinear(nn.Module):
    """A Linear whose forward uses the fake-quantized weight, with a straight-through gradient to the float weight."""

    def __init__(self, linear: nn.Linear, scheme: str, block: int, scale_format: str, clip="none"):
        super().__init__()
        self.linear = linear
        self.scheme, self.block, self.scale_format, self.clip = scheme, block, scale_format, clip

    @property
    def weight(self):
        return self.linear.weight

    @property
    def bias(self):
        return self.linear.bias

    def forward(self, x):
        w = self.linear.weight
        wq = w + (fake_quantize(w, self.scheme, self.block, self.scale_format, self.clip) - w).detach()
        return F.linear(x, wq, self.linear.bias)


def apply_recipe(model: nn.Module, recipe: str, scale_format: str = "f32", block: int | None = None) -> int:
    """Wraps the encoder matrices (Architecture.md section 7) of a ConformerRNNT in FakeQuantLinear. Returns the count.
    (For any other model: usm_ref.toolkit.quantize_model with a name pattern or predicate.)"""
    from .toolkit import select_linears, wrap_linears

    scheme, default_block, clip = RECIPES[recipe]
    b = default_block if block is None or default_block == 0 else block
    patterns = [f"encoder.layers.*.{part}.{name}" for part in ("ffn1", "ffn2", "mhsa", "conv") for name in ENCODER_MATRICES]
    names = select_linears(model, include=patterns)
    wrap_linears(model, names, scheme, b, clip, scale_format)
    return len(names)
