"""PyTorch reference of the Conformer RNN-T of Architecture.md (sections 3-6).

Training-time details that do not exist at inference (dropout, BatchNorm statistics, padding masks) live here;
`state_dict_for_export()` gives exactly the tensors of Architecture.md section 6 (BatchNorm folded, LSTM weights
concatenated as [W_ih, W_hh] with summed biases, LayerNorm weight exported as `scale`).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

LOG2E = 1.442695041
NEG_INF = -1e30


def swish(x):
    return x * torch.sigmoid(x)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over channel dim 1 whose training statistics ignore padded time steps.

    x: [B, C, ...]; mask broadcastable to x with 1 for valid positions (or None). Eval: affine with running stats.
    """

    def __init__(self, channels: int, eps: float = 1e-3, momentum: float = 0.01):
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def _shape(self, x):
        return [1, -1] + [1] * (x.dim() - 2)

    def forward(self, x, mask=None):
        shp = self._shape(x)
        if self.training:
            dims = [0] + list(range(2, x.dim()))
            if mask is None:
                mean = x.mean(dim=dims)
                var = x.var(dim=dims, unbiased=False)
            else:
                m = mask.to(x.dtype).expand_as(x)
                n = m.sum(dim=dims).clamp(min=1.0)
                mean = (x * m).sum(dim=dims) / n
                var = (((x - mean.view(shp)) * m) ** 2).sum(dim=dims) / n
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach())
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        shift = self.bias - mean * scale
        return x * scale.view(shp) + shift.view(shp)

    def folded(self):
        """(scale, bias) of the eval-mode affine."""
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale


def subsampled_lengths(lengths: torch.Tensor, layers: int) -> torch.Tensor:
    for _ in range(layers):
        lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    return lengths


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B, T] bool, True for valid steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class Subsampling(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.subsampling.channels
        self.layers = cfg.subsampling.layers
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i in range(self.layers):
            self.convs.append(nn.Conv2d(1 if i == 0 else C, C, 3, stride=2, padding=1, bias=True))
            self.bns.append(MaskedBatchNorm(C))
        self.proj = nn.Linear(C * cfg.sub_freq, cfg.encoder.dim)

    def forward(self, x, lengths):
        # x: [B, T, mel] normalised features, zero beyond lengths
        h = x[:, None]  # [B, 1, T, F]
        for conv, bn in zip(self.convs, self.bns):
            h = conv(h)
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            mask = length_mask(lengths, h.shape[2])[:, None, :, None]
            h = torch.relu(bn(h, mask)) * mask  # zero beyond the valid length, like the executor's padding
        B, C, T, Fp = h.shape
        h = h.permute(0, 2, 1, 3).reshape(B, T, C * Fp)  # channel-major: index c * F' + f
        return self.proj(h), lengths


class FFN(nn.Module):
    def __init__(self, dim, ffn_dim, eps, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.linear2(self.dropout(swish(self.linear1(self.norm(x))))))


def sinusoid(r: torch.Tensor, dim: int) -> torch.Tensor:
    """PE(r) = [sin(r f_0..f_{dim/2-1}), cos(r f_0..)], f_m = 10000^(-2m/dim). r: [R] -> [R, dim]."""
    m = torch.arange(dim // 2, dtype=torch.float64)
    f = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -2.0 * m / dim)
    a = r.to(torch.float64)[:, None] * f[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1).to(torch.float32)


def local_attention_mask(T: int, left_context: int, right_context: int, device=None) -> torch.Tensor:
    """[T, T] bool: query i may attend key j iff i - (left_context - 1) <= j <= i + right_context."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j >= i - (left_context - 1)) & (j <= i + right_context)


class RelPosMHSA(nn.Module):
    """Local Transformer-XL relative self-attention with per-dim scale (Architecture.md section 4)."""

    def __init__(self, dim, heads, left_context, right_context, eps, dropout):
        super().__init__()
        self.dim, self.heads, self.dh = dim, heads, dim // heads
        self.left_context, self.right_context = left_context, right_context
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.pos = nn.Linear(dim, dim, bias=False)
        self.u = nn.Parameter(torch.zeros(heads, self.dh))
        self.v = nn.Parameter(torch.zeros(heads, self.dh))
        self.per_dim_scale = nn.Parameter(torch.zeros(self.dh))
        # relative positions r = i - j, from -right_context to left_context - 1
        r = torch.arange(-right_context, left_context)
        self.register_buffer("pe", sinusoid(r, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, lengths):
        B, T, D = x.shape
        H, dh = self.heads, self.dh
        h = self.norm(x)
        q = self.query(h).view(B, T, H, dh)
        k = self.key(h).view(B, T, H, dh)
        v = self.value(h).view(B, T, H, dh)
        q = q * (F.softplus(self.per_dim_scale) * (LOG2E / math.sqrt(dh)))
        p = self.pos(self.pe).view(-1, H, dh)  # [R, H, dh], row idx = r + right_context
        R = p.shape[0]
        ac = torch.einsum("bihd,bjhd->bhij", q + self.u, k)  # content term
        bd = torch.einsum("bihd,rhd->bhir", q + self.v, p)  # [B, H, T, R]
        i = torch.arange(T, device=x.device)[:, None]
        j = torch.arange(T, device=x.device)[None, :]
        idx = (i - j + self.right_context).clamp(0, R - 1)  # [T, T]
        bd = torch.gather(bd, 3, idx[None, None].expand(B, H, T, T))
        allowed = local_attention_mask(T, self.left_context, self.right_context, x.device)[None, None]
        allowed = allowed & length_mask(lengths, T)[:, None, None, :]
        logits = (ac + bd).float().masked_fill(~allowed, NEG_INF)
        a = torch.softmax(logits, dim=-1)
        a = self.dropout(a)
        o = torch.einsum("bhij,bjhd->bihd", a, v).reshape(B, T, D)
        return self.out(o)


class ConvModule(nn.Module):
    def __init__(self, dim, kernel, eps, dropout):
        super().__init__()
        self.dim, self.kernel = dim, kernel
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise1 = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=(kernel - 1) // 2, groups=dim, bias=False)
        self.bn = MaskedBatchNorm(dim)
        self.pointwise2 = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        # mask: [B, T] bool
        g = self.pointwise1(self.norm(x))
        h = g[..., : self.dim] * torch.sigmoid(g[..., self.dim:])
        h = h * mask[..., None]  # padded frames are the zero padding of the depthwise conv
        h = self.depthwise(h.transpose(1, 2))  # [B, D, T]
        h = swish(self.bn(h, mask[:, None, :]))
        return self.dropout(self.pointwise2(h.transpose(1, 2)))


class ConformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout: float = 0.1):
        super().__init__()
        e = cfg.encoder
        eps = e.layer_norm_epsilon
        self.ffn1 = FFN(e.dim, e.ffn_dim, eps, dropout)
        self.mhsa = RelPosMHSA(e.dim, e.heads, e.left_context, e.right_context, eps, dropout)
        self.conv = ConvModule(e.dim, e.conv_kernel, eps, dropout)
        self.ffn2 = FFN(e.dim, e.ffn_dim, eps, dropout)
        self.final_norm = nn.LayerNorm(e.dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, lengths, mask):
        x = x + 0.5 * self.ffn1(x)
        x = x + self.dropout(self.mhsa(x, lengths))
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ffn2(x)
        return self.final_norm(x)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout: float = 0.1):
        super().__init__()
        self.cfg = cfg
        fb = cfg.frontend.mel_bins
        self.register_buffer("mean", torch.zeros(fb))
        self.register_buffer("std", torch.ones(fb))
        self.subsampling = Subsampling(cfg)
        self.layers = nn.ModuleList([ConformerBlock(cfg, dropout) for _ in range(cfg.encoder.layers)])

    def forward(self, feats, lengths, normalised: bool = False):
        """feats: [B, T, mel] log-mel (un-normalised unless `normalised`). Returns [B, T', dim], lengths'."""
        if not normalised:
            feats = (feats - self.mean) / self.std
        feats = feats * length_mask(lengths, feats.shape[1])[..., None]
        x, lengths = self.subsampling(feats, lengths)
        mask = length_mask(lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, lengths, mask)
        return x, lengths


class Predictor(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout: float = 0.1):
        super().__init__()
        p = cfg.predictor
        self.blank_id = cfg.blank_id
        self.embedding = nn.Embedding(cfg.vocab_size, p.embed_dim)
        self.lstm = nn.LSTM(p.embed_dim, p.hidden, num_layers=p.layers, batch_first=True,
                            dropout=dropout if p.layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, labels, state=None):
        """labels: [B, U] -> outputs [B, U, hidden] (no implicit start symbol), new state."""
        e = self.dropout(self.embedding(labels))
        out, state = self.lstm(e, state)
        return self.dropout(out), state

    def forward_train(self, targets):
        """targets: [B, U] -> [B, U+1, hidden]; position 0 is the start state fed with blank."""
        B = targets.shape[0]
        start = torch.full((B, 1), self.blank_id, dtype=targets.dtype, device=targets.device)
        out, _ = self.forward(torch.cat([start, targets], dim=1))
        return out


class Joint(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.enc_proj = nn.Linear(cfg.encoder.dim, cfg.joint.dim)
        self.pred_proj = nn.Linear(cfg.predictor.hidden, cfg.joint.dim)
        self.out = nn.Linear(cfg.joint.dim, cfg.vocab_size)

    def forward(self, enc, pred):
        """enc: [..., T, 1, dim] or projected; generic broadcast: returns logits."""
        return self.out(torch.tanh(self.enc_proj(enc) + self.pred_proj(pred)))

    def full(self, enc, pred):
        """enc [B, T, dim], pred [B, U+1, hidden] -> [B, T, U+1, vocab]."""
        return self.out(torch.tanh(self.enc_proj(enc)[:, :, None] + self.pred_proj(pred)[:, None]))


class ConformerRNNT(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout: float = 0.1):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = Encoder(cfg, dropout)
        self.predictor = Predictor(cfg, dropout)
        self.joint = Joint(cfg)

    def set_normalisation(self, mean, std):
        self.encoder.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.encoder.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, feats, feat_lengths, targets, target_lengths):
        """Returns RNN-T logits [B, T', U+1, V] and encoder lengths."""
        enc, enc_lengths = self.encoder(feats, feat_lengths)
        pred = self.predictor.forward_train(targets)
        return self.joint.full(enc, pred), enc_lengths

    # -----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def state_dict_for_export(self) -> "OrderedDict[str, np.ndarray]":
        """Tensors named and shaped as in Architecture.md section 6 (float32 numpy, eval-mode folding)."""
        cfg = self.cfg
        out: OrderedDict[str, np.ndarray] = OrderedDict()

        def put(name, t):
            out[name] = t.detach().to(torch.float32).cpu().contiguous().numpy()

        enc = self.encoder
        put("frontend.mean", enc.mean)
        put("frontend.std", enc.std)
        for i, (conv, bn) in enumerate(zip(enc.subsampling.convs, enc.subsampling.bns)):
            s, b = bn.folded()
            put(f"subsampling.conv{i}.weight", conv.weight * s[:, None, None, None])
            put(f"subsampling.conv{i}.bias", conv.bias * s + b)
        put("subsampling.proj.weight", enc.subsampling.proj.weight)
        put("subsampling.proj.bias", enc.subsampling.proj.bias)

        def ln(prefix, m):
            put(prefix + ".scale", m.weight)
            put(prefix + ".bias", m.bias)

        def lin(prefix, m, bias=True):
            put(prefix + ".weight", m.weight)
            if bias:
                put(prefix + ".bias", m.bias)

        for i, layer in enumerate(enc.layers):
            p = f"encoder.layers.{i}"
            for name in ("ffn1", "ffn2"):
                f = getattr(layer, name)
                ln(f"{p}.{name}.norm", f.norm)
                lin(f"{p}.{name}.linear1", f.linear1)
                lin(f"{p}.{name}.linear2", f.linear2)
            a = layer.mhsa
            ln(f"{p}.mhsa.norm", a.norm)
            for name in ("query", "key", "value", "out"):
                lin(f"{p}.mhsa.{name}", getattr(a, name))
            put(f"{p}.mhsa.pos.weight", a.pos.weight)
            put(f"{p}.mhsa.u", a.u)
            put(f"{p}.mhsa.v", a.v)
            put(f"{p}.mhsa.per_dim_scale", a.per_dim_scale)
            c = layer.conv
            ln(f"{p}.conv.norm", c.norm)
            lin(f"{p}.conv.pointwise1", c.pointwise1)
            put(f"{p}.conv.depthwise.weight", c.depthwise.weight[:, 0, :])
            s, b = c.bn.folded()
            put(f"{p}.conv.bn.scale", s)
            put(f"{p}.conv.bn.bias", b)
            lin(f"{p}.conv.pointwise2", c.pointwise2)
            ln(f"{p}.final_norm", layer.final_norm)

        pr = self.predictor
        put("predictor.embedding", pr.embedding.weight)
        for l in range(cfg.predictor.layers):
            w = torch.cat([getattr(pr.lstm, f"weight_ih_l{l}"), getattr(pr.lstm, f"weight_hh_l{l}")], dim=1)
            b = getattr(pr.lstm, f"bias_ih_l{l}") + getattr(pr.lstm, f"bias_hh_l{l}")
            put(f"predictor.lstm.{l}.weight", w)
            put(f"predictor.lstm.{l}.bias", b)
        lin("joint.enc_proj", self.joint.enc_proj)
        lin("joint.pred_proj", self.joint.pred_proj)
        lin("joint.out", self.joint.out)
        return out


def expected_export_shapes(cfg: ModelConfig) -> "OrderedDict[str, tuple]":
    """Architecture.md section 6, written out independently of the model code (used by tests)."""
    e, p = cfg.encoder, cfg.predictor
    C, D, dh = cfg.subsampling.channels, e.dim, cfg.head_dim
    s: OrderedDict[str, tuple] = OrderedDict()
    s["frontend.mean"] = (cfg.frontend.mel_bins,)
    s["frontend.std"] = (cfg.frontend.mel_bins,)
    for i in range(cfg.subsampling.layers):
        s[f"subsampling.conv{i}.weight"] = (C, 1 if i == 0 else C, 3, 3)
        s[f"subsampling.conv{i}.bias"] = (C,)
    s["subsampling.proj.weight"] = (D, C * cfg.sub_freq)
    s["subsampling.proj.bias"] = (D,)
    for i in range(e.layers):
        q = f"encoder.layers.{i}"
        for f in ("ffn1", "ffn2"):
            s[f"{q}.{f}.norm.scale"] = (D,)
            s[f"{q}.{f}.norm.bias"] = (D,)
            s[f"{q}.{f}.linear1.weight"] = (e.ffn_dim, D)
            s[f"{q}.{f}.linear1.bias"] = (e.ffn_dim,)
            s[f"{q}.{f}.linear2.weight"] = (D, e.ffn_dim)
            s[f"{q}.{f}.linear2.bias"] = (D,)
        s[f"{q}.mhsa.norm.scale"] = (D,)
        s[f"{q}.mhsa.norm.bias"] = (D,)
        for n in ("query", "key", "value", "out"):
            s[f"{q}.mhsa.{n}.weight"] = (D, D)
            s[f"{q}.mhsa.{n}.bias"] = (D,)
        s[f"{q}.mhsa.pos.weight"] = (D, D)
        s[f"{q}.mhsa.u"] = (e.heads, dh)
        s[f"{q}.mhsa.v"] = (e.heads, dh)
        s[f"{q}.mhsa.per_dim_scale"] = (dh,)
        s[f"{q}.conv.norm.scale"] = (D,)
        s[f"{q}.conv.norm.bias"] = (D,)
        s[f"{q}.conv.pointwise1.weight"] = (2 * D, D)
        s[f"{q}.conv.pointwise1.bias"] = (2 * D,)
        s[f"{q}.conv.depthwise.weight"] = (D, e.conv_kernel)
        s[f"{q}.conv.bn.scale"] = (D,)
        s[f"{q}.conv.bn.bias"] = (D,)
        s[f"{q}.conv.pointwise2.weight"] = (D, D)
        s[f"{q}.conv.pointwise2.bias"] = (D,)
        s[f"{q}.final_norm.scale"] = (D,)
        s[f"{q}.final_norm.bias"] = (D,)
    s["predictor.embedding"] = (cfg.vocab_size, p.embed_dim)
    for l in range(p.layers):
        inl = p.embed_dim if l == 0 else p.hidden
        s[f"predictor.lstm.{l}.weight"] = (4 * p.hidden, inl + p.hidden)
        s[f"predictor.lstm.{l}.bias"] = (4 * p.hidden,)
    s["joint.enc_proj.weight"] = (cfg.joint.dim, D)
    s["joint.enc_proj.bias"] = (cfg.joint.dim,)
    s["joint.pred_proj.weight"] = (cfg.joint.dim, p.hidden)
    s["joint.pred_proj.bias"] = (cfg.joint.dim,)
    s["joint.out.weight"] = (cfg.vocab_size, cfg.joint.dim)
    s["joint.out.bias"] = (cfg.vocab_size,)
    return s
