"""Numpy reference forward pass of an imported NeMo transducer; reads ONLY the container written by
`usm_ref.nemo.import_nemo` (its `architecture` metadata and f32 tensors), never NeMo or torch.

    m = NemoModel.load("model.usm")
    feats = m.features(samples)                 # [frames, mels]   (AudioToMelSpectrogramPreprocessor, eval mode)
    sub = m.subsample(feats)                    # [T', d_model]    (encoder.pre_encode output, before xscale)
    enc = m.encode(sub)                         # [T', d_model]    (ConformerEncoder output, transposed)
    hyp = m.greedy(enc)                         # dict(tokens, frames[, durations])  RNN-T or TDT label-looping greedy
    text = m.detokenize(hyp["tokens"])

Every formula is written out in docs/nemo-import.md; this file is the executable form of that document.
"""
from __future__ import annotations

import math

import numpy as np

from .. import container

INF_VAL = 10000.0  # nemo.collections.asr.parts.submodules.multi_head_attention.INF_VAL


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def swish(x):
    return x * sigmoid(x)


def layer_norm(x, scale, bias, eps):
    x64 = x.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + eps) * scale + bias).astype(np.float32)


def linear(x, w, b=None):
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if b is not None:
        y = y + b
    return y.astype(np.float32)


def conv2d(x, w, b, stride=2, pad=1, groups=1):
    """x [Cin, T, F], w [Cout, Cin/groups, kh, kw] -> [Cout, T', F'], zero padding `pad` on every side."""
    cin, T, F = x.shape
    cout, cpg, kh, kw = w.shape
    xp = np.zeros((cin, T + 2 * pad, F + 2 * pad), np.float64)
    xp[:, pad:pad + T, pad:pad + F] = x
    To = (T + 2 * pad - kh) // stride + 1
    Fo = (F + 2 * pad - kw) // stride + 1
    # patches [cin, kh, kw, To, Fo]
    patches = np.empty((cin, kh, kw, To, Fo), np.float64)
    for i in range(kh):
        for j in range(kw):
            patches[:, i, j] = xp[:, i:i + stride * (To - 1) + 1:stride, j:j + stride * (Fo - 1) + 1:stride]
    w64 = w.astype(np.float64)
    if groups == 1:
        y = np.einsum("oikl,iklTF->oTF", w64, patches)
    elif groups == cin and cpg == 1:
        y = np.einsum("okl,oklTF->oTF", w64[:, 0], patches)
    else:
        raise ValueError("grouped conv other than depthwise")
    return (y + b.astype(np.float64)[:, None, None]).astype(np.float32)


def mel_filterbank_slaney(sr, n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney') in numpy (float64, then f32).
    Slaney mel scale: linear below 1 kHz (f / (200/3)), logarithmic above (15 + ln(f/1000) / (ln(6.4)/27))."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fftfreqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return (weights * enorm[:, None]).astype(np.float32)


def relative_positions(L, d_model):
    """NeMo RelPositionalEncoding rows for a length-L input: row k holds position (L-1) - k, k = 0 ... 2L-2;
    pe[k, 2m] = sin(pos * div[m]), pe[k, 2m+1] = cos(pos * div[m]), div[m] = exp(2m * -(ln(10000) / d_model)),
    div and pos*div in float32 as torch computes them."""
    pos = np.arange(L - 1, -L, -1, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * np.float32(-(math.log(INF_VAL) / d_model)))
    div = div.astype(np.float32)
    arg = (pos * div[None, :]).astype(np.float32)
    pe = np.zeros((2 * L - 1, d_model), np.float32)
    pe[:, 0::2] = np.sin(arg.astype(np.float64))
    pe[:, 1::2] = np.cos(arg.astype(np.float64))
    return pe


class NemoModel:
    def __init__(self, meta: dict, tensors: dict):
        self.meta = meta
        self.arch = meta["architecture"]
        if not str(self.arch.get("type", "")).startswith("nemo-"):
            raise ValueError(f"not an imported NeMo model: {self.arch.get('type')}")
        self.t = {k: v for k, v in tensors.items()}
        self.pre = self.arch["preprocessor"]
        self.enc = self.arch["encoder"]
        self.tok = meta.get("tokenizer") or {}

    @classmethod
    def load(cls, path):
        meta, packed = container.read(path)
        return cls(meta, {k: p.dequantize().astype(np.float32) for k, p in packed.items()})

    # ------------------------------------------------------------------------------------------ preprocessor
    def features(self, samples: np.ndarray) -> np.ndarray:
        """Mono float32 samples -> normalized log-mel [frames, features], valid frames only (see the doc)."""
        p = self.pre
        x = np.asarray(samples, np.float32)
        n = x.size
        hop, n_fft, win = p["hop_length"], p["n_fft"], p["win_length"]
        if p["preemph"] is not None and p["preemph"] != 0:
            y = np.empty_like(x)
            y[0] = x[0]
            y[1:] = x[1:] - np.float32(p["preemph"]) * x[:-1]
            x = y
        half = n_fft // 2
        xp = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half, np.float32)])
        frames = 1 + (xp.size - n_fft) // hop
        w = np.zeros(n_fft, np.float32)
        left = (n_fft - win) // 2
        w[left:left + win] = self.t["preprocessor.window"]
        idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
        spec = np.fft.rfft(xp[idx].astype(np.float64) * w, axis=-1)
        mag = np.sqrt(spec.real ** 2 + spec.imag ** 2)
        if p["mag_power"] != 1.0:
            mag = mag ** p["mag_power"]
        mel = mag @ self.t["preprocessor.filterbank"].astype(np.float64).T  # [frames, M]
        mel = mel.astype(np.float32).astype(np.float64)
        if p["log"]:
            g = p["log_zero_guard_value"]
            mel = np.log(mel + g) if p["log_zero_guard_type"] == "add" else np.log(np.maximum(mel, g))
        valid = (n + 2 * half - n_fft) // hop  # FilterbankFeatures.get_seq_len: one less than the STFT frames
        mel = mel[:valid]
        if p["normalize"] == "per_feature":
            mu = mel.mean(0)
            sd = np.sqrt(((mel - mu) ** 2).sum(0) / (valid - 1)) if valid > 1 else np.zeros_like(mu)
            mel = (mel - mu) / (sd + p["normalize_epsilon"])
        elif p["normalize"] == "all_features":
            mu, sd = mel.mean(), mel.std(ddof=1)
            mel = (mel - mu) / (sd + p["normalize_epsilon"])
        return mel.astype(np.float32)

    # ------------------------------------------------------------------------------------------ subsampling
    def subsample(self, feats: np.ndarray) -> np.ndarray:
        e, t = self.enc, self.t
        x = feats[None].astype(np.float32)  # [1, T, F]
        if e["subsampling"] == "striding":
            for k in range(e["subsampling_layers"]):
                x = np.maximum(conv2d(x, t[f"encoder.subsampling.conv{k}.weight"],
                                      t[f"encoder.subsampling.conv{k}.bias"]), 0)
        else:
            x = np.maximum(conv2d(x, t["encoder.subsampling.conv0.weight"], t["encoder.subsampling.conv0.bias"]), 0)
            for k in range(1, e["subsampling_layers"]):
                x = conv2d(x, t[f"encoder.subsampling.dw{k}.weight"], t[f"encoder.subsampling.dw{k}.bias"],
                           groups=x.shape[0])
                c, T, F = x.shape
                x = linear(x.reshape(c, T * F).T, t[f"encoder.subsampling.pw{k}.weight"],
                           t[f"encoder.subsampling.pw{k}.bias"]).T.reshape(-1, T, F)
                x = np.maximum(x, 0)
        c, T, F = x.shape
        flat = x.transpose(1, 0, 2).reshape(T, c * F)  # index = channel * F' + freq
        return linear(flat, t["encoder.subsampling.out.weight"], t["encoder.subsampling.out.bias"])

    @staticmethod
    def subsampled_length(n_frames: int, layers: int) -> int:
        for _ in range(layers):
            n = (n_frames + 2 * 1 - 3) // 2 + 1
            n_frames = n
        return n_frames

    # ------------------------------------------------------------------------------------------ encoder
    def attention(self, i, x, pe):
        e, t = self.enc, self.t
        T, D = x.shape
        H = e["n_heads"]
        dh = D // H
        s = f"encoder.layers.{i}.mhsa."
        q = linear(x, t[s + "query.weight"], t[s + "query.bias"]).reshape(T, H, dh).astype(np.float64)
        k = linear(x, t[s + "key.weight"], t[s + "key.bias"]).reshape(T, H, dh).astype(np.float64)
        v = linear(x, t[s + "value.weight"], t[s + "value.bias"]).reshape(T, H, dh).astype(np.float64)
        p = linear(pe, t[s + "pos.weight"]).reshape(-1, H, dh).astype(np.float64)  # [2T-1, H, dh]
        qu = q + t[s + "u"][None]
        qv = q + t[s + "v"][None]
        ac = np.einsum("ihd,jhd->hij", qu, k)
        bd_full = np.einsum("ihd,khd->hik", qv, p)  # [H, T, 2T-1]
        ii, jj = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
        bd = bd_full[:, ii, (T - 1) - ii + jj]  # relative position i - j
        scores = (ac + bd) / math.sqrt(dh)
        left, right = e["att_context_size"]
        allowed = np.ones((T, T), bool)
        if left >= 0:
            allowed &= jj >= ii - left
        if right >= 0:
            allowed &= jj <= ii + right
        scores = np.where(allowed[None], scores, -INF_VAL)
        scores = scores - scores.max(-1, keepdims=True)
        a = np.exp(scores)
        a = a / a.sum(-1, keepdims=True)
        a = np.where(allowed[None], a, 0.0)
        o = np.einsum("hij,jhd->ihd", a, v).reshape(T, D).astype(np.float32)
        return linear(o, t[s + "out.weight"], t[s + "out.bias"])

    def conv_module(self, i, x):
        e, t = self.enc, self.t
        s = f"encoder.layers.{i}.conv."
        T, D = x.shape
        g = linear(x, t[s + "pointwise1.weight"], t[s + "pointwise1.bias"])  # [T, 2D]
        h = (g[:, :D].astype(np.float64) * sigmoid(g[:, D:].astype(np.float64))).astype(np.float32)
        K = e["conv_kernel_size"]
        pad = (K - 1) // 2
        hp = np.zeros((T + 2 * pad, D), np.float64)
        hp[pad:pad + T] = h
        w = t[s + "depthwise.weight"].astype(np.float64)  # [D, K]; tap k multiplies frame i + k - pad
        y = np.zeros((T, D), np.float64)
        for kk in range(K):
            y += hp[kk:kk + T] * w[:, kk]
        y = (y + t[s + "depthwise.bias"]).astype(np.float32)
        if e["conv_norm_type"] == "layer_norm":
            y = layer_norm(y, t[s + "dw_norm.scale"], t[s + "dw_norm.bias"], e["layer_norm_epsilon"])
        y = swish(y.astype(np.float64)).astype(np.float32)
        return linear(y, t[s + "pointwise2.weight"], t[s + "pointwise2.bias"])

    def ffn(self, name, x):
        t = self.t
        h = linear(x, t[name + ".linear1.weight"], t[name + ".linear1.bias"])
        h = swish(h.astype(np.float64)).astype(np.float32)
        return linear(h, t[name + ".linear2.weight"], t[name + ".linear2.bias"])

    def encode(self, sub: np.ndarray, return_layers=False) -> np.ndarray:
        e, t = self.enc, self.t
        eps = e["layer_norm_epsilon"]
        x = sub.astype(np.float32)
        if e["xscaling"]:
            x = (x * np.float32(math.sqrt(e["d_model"]))).astype(np.float32)
        T = x.shape[0]
        pe = relative_positions(T, e["d_model"])
        layers = []
        for i in range(e["n_layers"]):
            s = f"encoder.layers.{i}."
            n = lambda name, v: layer_norm(v, t[s + name + ".scale"], t[s + name + ".bias"], eps)  # noqa: E731
            x = x + 0.5 * self.ffn(s + "ffn1", n("ffn1.norm", x))
            x = x + self.attention(i, n("mhsa.norm", x), pe)
            x = x + self.conv_module(i, n("conv.norm", x))
            x = x + 0.5 * self.ffn(s + "ffn2", n("ffn2.norm", x))
            x = n("final_norm", x)
            layers.append(x)
        return (x, layers) if return_layers else x

    # ------------------------------------------------------------------------------------------ decoder
    def predictor_start(self):
        P = self.arch["predictor"]
        Hh, L = P["pred_hidden"], P["pred_rnn_layers"]
        state = [(np.zeros(Hh), np.zeros(Hh)) for _ in range(L)]
        return self.predictor_step(None, state)

    def predictor_step(self, token, state):
        """token None = the start (a zero input vector, which equals the zeroed blank/pad embedding row)."""
        t = self.t
        emb = t["predictor.embedding"]
        x = np.zeros(emb.shape[1]) if token is None else emb[token].astype(np.float64)
        new = []
        for l, (h, c) in enumerate(state):
            W, b = t[f"predictor.lstm.{l}.weight"].astype(np.float64), t[f"predictor.lstm.{l}.bias"]
            gates = W @ np.concatenate([x, h]) + b
            Hh = h.size
            i, f, g, o = (gates[k * Hh:(k + 1) * Hh] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            new.append((h, c))
            x = h
        return x, new

    def joint(self, enc_t, g):
        t, j = self.t, self.arch["joint"]
        f = t["joint.enc_proj.weight"].astype(np.float64) @ enc_t + t["joint.enc_proj.bias"]
        p = t["joint.pred_proj.weight"].astype(np.float64) @ g + t["joint.pred_proj.bias"]
        z = f + p
        act = j["activation"]
        z = np.maximum(z, 0) if act == "relu" else np.tanh(z) if act == "tanh" else sigmoid(z)
        return t["joint.out.weight"].astype(np.float64) @ z + t["joint.out.bias"]

    def greedy(self, enc: np.ndarray, max_symbols: int | None = None):
        """NeMo's label-looping greedy search (greedy_batch), RNN-T or TDT; see docs/nemo-import.md."""
        a = self.arch
        blank, T = a["blank_id"], enc.shape[0]
        max_symbols = max_symbols or a["decoding"]["max_symbols"]
        durations = a["durations"] if a["tdt"] else None
        nd = len(durations) if durations else 0
        g, state = self.predictor_start()
        tokens, frames, durs = [], [], []
        t, last_t, count = 0, -1, 0
        enc64 = enc.astype(np.float64)
        while t < T:
            logits = self.joint(enc64[t], g)
            tok_logits = logits[:blank + 1]
            k = int(np.argmax(tok_logits))
            if durations:
                d = durations[int(np.argmax(logits[blank + 1:blank + 1 + nd]))]
            else:
                d = 1 if k == blank else 0
            if k == blank:
                t += max(d, 1)
                continue
            tokens.append(k)
            frames.append(t)
            durs.append(d)
            g, state = self.predictor_step(k, state)
            count = count + 1 if t == last_t else 1
            last_t = t
            t += d
            if d == 0 and count >= max_symbols:
                t += 1
        out = {"tokens": tokens, "frames": frames}
        if durations:
            out["durations"] = durs
        return out

    def ctc_greedy(self, enc: np.ndarray):
        t = self.t
        logits = linear(enc, t["ctc.weight"], t["ctc.bias"]).astype(np.float64)
        logp = logits - logits.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        blank = self.arch["ctc"]["blank_id"]
        out, prev = [], None
        for i in np.argmax(logp, -1):
            if i != prev and i != blank:
                out.append(int(i))
            prev = i
        return out, logp.astype(np.float32)

    def detokenize(self, ids):
        pieces = self.tok["pieces"]
        return "".join(pieces[i] for i in ids).replace("\u2581", " ").strip()

    def transcribe(self, samples):
        enc = self.encode(self.subsample(self.features(samples)))
        hyp = self.greedy(enc)
        return self.detokenize(hyp["tokens"]), hyp
