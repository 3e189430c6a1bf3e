"""Plain numpy forward pass from the *exported* tensors (Architecture.md sections 2-6), one utterance.

This is the executor's math written out without torch: it reads only `state_dict_for_export()` names, so it
checks the export (BatchNorm folding, LSTM concatenation) and serves as a golden model for the Swift side.
"""
from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .frontend import log_mel_np, normalise


def _ln(x, W, p, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * W[p + ".scale"] + W[p + ".bias"]


def _lin(x, W, p, bias=True):
    y = x @ W[p + ".weight"].T
    return y + W[p + ".bias"] if bias else y


def _swish(x):
    return x / (1.0 + np.exp(-x))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _conv2d_s2(x, w, b):
    """x [Cin, T, F], w [Cout, Cin, 3, 3], stride 2, padding 1 -> [Cout, ceil(T/2), ceil(F/2)]."""
    Cin, T, F = x.shape
    To, Fo = (T + 1) // 2, (F + 1) // 2
    xp = np.zeros((Cin, T + 2, F + 2), x.dtype)
    xp[:, 1:T + 1, 1:F + 1] = x
    out = np.zeros((w.shape[0], To, Fo), np.float64)
    for dt in range(3):
        for df in range(3):
            patch = xp[:, dt:dt + 2 * To:2, df:df + 2 * Fo:2]  # [Cin, To, Fo]
            out += np.einsum("oc,ctf->otf", w[:, :, dt, df], patch)
    return out + b[:, None, None]


def sinusoid_np(r, dim):
    f = 10000.0 ** (-2.0 * np.arange(dim // 2) / dim)
    a = np.asarray(r, np.float64)[:, None] * f[None]
    return np.concatenate([np.sin(a), np.cos(a)], 1)


def encoder_np(feats_norm: np.ndarray, W: dict, cfg: ModelConfig) -> np.ndarray:
    """feats_norm [T, mel] (already normalised) -> [T', dim]."""
    e = cfg.encoder
    h = feats_norm.astype(np.float64)[None]
    for i in range(cfg.subsampling.layers):
        h = np.maximum(_conv2d_s2(h, W[f"subsampling.conv{i}.weight"], W[f"subsampling.conv{i}.bias"]), 0)
    C, T, Fp = h.shape
    x = _lin(h.transpose(1, 0, 2).reshape(T, C * Fp), W, "subsampling.proj")
    H, dh, D = e.heads, e.dim // e.heads, e.dim
    Lc, Rc = e.left_context, e.right_context
    K = e.conv_kernel
    for l in range(e.layers):
        p = f"encoder.layers.{l}"
        eps = e.layer_norm_epsilon

        def ffn(x, n):
            y = _ln(x, W, f"{p}.{n}.norm", eps)
            return _lin(_swish(_lin(y, W, f"{p}.{n}.linear1")), W, f"{p}.{n}.linear2")

        x = x + 0.5 * ffn(x, "ffn1")
        y = _ln(x, W, f"{p}.mhsa.norm", eps)
        q = _lin(y, W, f"{p}.mhsa.query").reshape(T, H, dh)
        k = _lin(y, W, f"{p}.mhsa.key").reshape(T, H, dh)
        v = _lin(y, W, f"{p}.mhsa.value").reshape(T, H, dh)
        pds = W[f"{p}.mhsa.per_dim_scale"]
        q = q * (np.log1p(np.exp(pds)) * 1.442695041 / np.sqrt(dh))
        u, vv = W[f"{p}.mhsa.u"], W[f"{p}.mhsa.v"]
        o = np.zeros((T, H, dh))
        for i in range(T):
            js = np.arange(max(0, i - (Lc - 1)), min(T, i + Rc + 1))
            pe = sinusoid_np(i - js, D) @ W[f"{p}.mhsa.pos.weight"].T  # [J, D]
            pe = pe.reshape(len(js), H, dh)
            logit = np.einsum("hd,jhd->hj", q[i] + u, k[js]) + np.einsum("hd,jhd->hj", q[i] + vv, pe)
            logit = logit - logit.max(-1, keepdims=True)
            a = np.exp(logit)
            a /= a.sum(-1, keepdims=True)
            o[i] = np.einsum("hj,jhd->hd", a, v[js])
        x = x + _lin(o.reshape(T, D), W, f"{p}.mhsa.out")
        y = _ln(x, W, f"{p}.conv.norm", eps)
        g = _lin(y, W, f"{p}.conv.pointwise1")
        y = g[:, :D] * _sigmoid(g[:, D:])
        pad = (K - 1) // 2
        yp = np.concatenate([np.zeros((pad, D)), y, np.zeros((pad, D))])
        dw = W[f"{p}.conv.depthwise.weight"]  # [D, K]
        y = sum(yp[t:t + T] * dw[:, t] for t in range(K))
        y = _swish(y * W[f"{p}.conv.bn.scale"] + W[f"{p}.conv.bn.bias"])
        x = x + _lin(y, W, f"{p}.conv.pointwise2")
        x = x + 0.5 * ffn(x, "ffn2")
        x = _ln(x, W, f"{p}.final_norm", eps)
    return x


def lstm_step(x, h, c, W, l):
    z = W[f"predictor.lstm.{l}.weight"] @ np.concatenate([x, h]) + W[f"predictor.lstm.{l}.bias"]
    i, f, g, o = np.split(z, 4)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, c


def greedy_np(enc: np.ndarray, W: dict, cfg: ModelConfig) -> list[int]:
    P = cfg.predictor
    hs = [np.zeros(P.hidden) for _ in range(P.layers)]
    cs = [np.zeros(P.hidden) for _ in range(P.layers)]

    def pred(tok):
        x = W["predictor.embedding"][tok].astype(np.float64)
        for l in range(P.layers):
            hs[l], cs[l] = lstm_step(x, hs[l], cs[l], W, l)
            x = hs[l]
        return _lin(x, W, "joint.pred_proj")

    pp = pred(cfg.blank_id)
    ep = _lin(enc, W, "joint.enc_proj")
    hyp = []
    for t in range(enc.shape[0]):
        for _ in range(cfg.max_symbols_per_frame):
            k = int(np.argmax(_lin(np.tanh(ep[t] + pp), W, "joint.out")))
            if k == cfg.blank_id:
                break
            hyp.append(k)
            pp = pred(k)
    return hyp


def transcribe_np(samples: np.ndarray, W: dict, cfg: ModelConfig) -> list[int]:
    f = normalise(log_mel_np(samples, cfg.frontend, cfg.sample_rate), W["frontend.mean"], W["frontend.std"])
    return greedy_np(encoder_np(f, W, cfg), W, cfg)
