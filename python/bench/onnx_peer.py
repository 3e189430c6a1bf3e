#!/usr/bin/env python3
"""ONNX Runtime peer for `usm-bench wer --peer-onnx`.

Loads an f32 (recipe exp0) usm-infer model file into the PyTorch reference model (usm_ref.model.ConformerRNNT),
exports three graphs with torch.onnx.export (encoder, predictor step, joiner), quantizes each with ONNX Runtime's
dynamic int8 quantization (onnxruntime.quantization.quantize_dynamic, QInt8 weights), and transcribes a folder with
greedy RNN-T search (Architecture.md section 5) over ORT sessions, once per variant (ort-f32, ort-int8).

    python3 python/bench/onnx_peer.py MODEL.usm DIR [--limit N] [--threads N]

DIR holds transcripts.tsv (id, seconds, transcript; header line) and <id>.flac/.wav audio. Prints ONE JSON document
on stdout: {"variants": [{"name", "utterances", "audio_seconds", "compute_seconds", "rtf", "hypotheses"}],
"onnxruntime": version, "note": ...}, or {"skip": reason} when a dependency is missing or the model does not fit.
The log-mel frontend runs in numpy (usm_ref.frontend.log_mel_np), not in ONNX. Compute time per utterance covers
resampling, features, encoder and search (like usm-infer's total); it excludes file decoding, export, quantization
and session creation. Text normalisation and WER are the caller's.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError as e:  # the caller prints the reason and skips the peer
    if __name__ == "__main__":
        print(json.dumps({"skip": f"numpy not importable: {e}"}))
        sys.exit(0)
    raise

try:  # imported here, not on first use, so that the first resampled utterance does not pay for the import
    from scipy.signal import resample_poly
except ImportError:
    resample_poly = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg")  # the order EvaluationSet (Swift) tries


class Skip(Exception):
    """A reason to skip the peer (reported as {"skip": ...})."""


# ---------------------------------------------------------------------------------------------------------------
# .usm -> torch


def read_usm(path: str, require_f32: bool = True):
    """(ModelConfig, name -> float32 array, pieces) of a usm-infer model file."""
    from usm_ref import container
    from usm_ref.config import ModelConfig

    meta, tensors = container.read(path)
    arch = meta.get("architecture")
    if not arch:
        raise Skip(f"{path} has no architecture metadata")
    cfg = ModelConfig.from_dict(arch)
    packed = [n for n, t in tensors.items() if t.layout.scheme != "f32"]
    if require_f32 and packed:
        raise Skip(f"the ONNX peer needs an f32 (exp0) model; {len(packed)} tensors of {path} are packed "
                   f"(e.g. {packed[0]}: {tensors[packed[0]].layout.scheme})")
    weights = {n: np.asarray(t.dequantize(), dtype=np.float32).reshape(t.layout.shape) for n, t in tensors.items()}
    pieces = meta.get("tokenizer", {}).get("pieces") or [f"<{i}>" for i in range(cfg.vocab_size)]
    return cfg, weights, pieces


def load_torch_model(cfg, weights: dict):
    """The inverse of ConformerRNNT.state_dict_for_export: an eval-mode torch model with the stored tensors.

    Folded BatchNorms become identity-plus-affine (running mean 0, variance 1, eps 0, weight = scale, bias = shift;
    for the subsampling convs scale 1 and shift 0 since the fold lives in the conv); the concatenated LSTM weight is
    split into weight_ih / weight_hh with bias_ih = the stored (summed) bias and bias_hh = 0.
    """
    import torch

    from usm_ref.model import ConformerRNNT, expected_export_shapes

    want = expected_export_shapes(cfg)
    missing = [k for k in want if k not in weights]
    if missing:
        raise ValueError(f"model file lacks {len(missing)} tensors, e.g. {missing[0]}")
    for k, shape in want.items():
        if tuple(weights[k].shape) != tuple(shape):
            raise ValueError(f"{k}: shape {tuple(weights[k].shape)}, expected {tuple(shape)}")
    m = ConformerRNNT(cfg, dropout=0.0)
    used = set()

    def w(name):
        used.add(name)
        return torch.from_numpy(np.ascontiguousarray(weights[name]))

    def copy(param, name):
        param.copy_(w(name).reshape(param.shape))

    def affine_bn(bn, scale, shift):
        bn.eps = 0.0
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.copy_(scale)
        bn.bias.copy_(shift)

    def ln(mod, prefix):
        copy(mod.weight, prefix + ".scale")
        copy(mod.bias, prefix + ".bias")

    def lin(mod, prefix, bias=True):
        copy(mod.weight, prefix + ".weight")
        if bias:
            copy(mod.bias, prefix + ".bias")

    with torch.no_grad():
        enc = m.encoder
        copy(enc.mean, "frontend.mean")
        copy(enc.std, "frontend.std")
        sub = enc.subsampling
        for i, (conv, bn) in enumerate(zip(sub.convs, sub.bns)):
            lin(conv, f"subsampling.conv{i}")
            affine_bn(bn, torch.ones_like(bn.weight), torch.zeros_like(bn.bias))
        lin(sub.proj, "subsampling.proj")
        for i, layer in enumerate(enc.layers):
            p = f"encoder.layers.{i}"
            for name in ("ffn1", "ffn2"):
                f = getattr(layer, name)
                ln(f.norm, f"{p}.{name}.norm")
                lin(f.linear1, f"{p}.{name}.linear1")
                lin(f.linear2, f"{p}.{name}.linear2")
            a = layer.mhsa
            ln(a.norm, f"{p}.mhsa.norm")
            for name in ("query", "key", "value", "out"):
                lin(getattr(a, name), f"{p}.mhsa.{name}")
            lin(a.pos, f"{p}.mhsa.pos", bias=False)
            copy(a.u, f"{p}.mhsa.u")
            copy(a.v, f"{p}.mhsa.v")
            copy(a.per_dim_scale, f"{p}.mhsa.per_dim_scale")
            c = layer.conv
            ln(c.norm, f"{p}.conv.norm")
            lin(c.pointwise1, f"{p}.conv.pointwise1")
            c.depthwise.weight.copy_(w(f"{p}.conv.depthwise.weight")[:, None, :])
            affine_bn(c.bn, w(f"{p}.conv.bn.scale"), w(f"{p}.conv.bn.bias"))
            lin(c.pointwise2, f"{p}.conv.pointwise2")
            ln(layer.final_norm, f"{p}.final_norm")
        pr = m.predictor
        copy(pr.embedding.weight, "predictor.embedding")
        for l in range(cfg.predictor.layers):
            W = w(f"predictor.lstm.{l}.weight")
            n_in = getattr(pr.lstm, f"weight_ih_l{l}").shape[1]
            getattr(pr.lstm, f"weight_ih_l{l}").copy_(W[:, :n_in])
            getattr(pr.lstm, f"weight_hh_l{l}").copy_(W[:, n_in:])
            getattr(pr.lstm, f"bias_ih_l{l}").copy_(w(f"predictor.lstm.{l}.bias"))
            getattr(pr.lstm, f"bias_hh_l{l}").zero_()
        lin(m.joint.enc_proj, "joint.enc_proj")
        lin(m.joint.pred_proj, "joint.pred_proj")
        lin(m.joint.out, "joint.out")
    extra = set(weights) - used
    if extra:
        raise ValueError(f"model file has tensors the reference model does not use: {sorted(extra)[:3]}")
    return m.eval()


# ---------------------------------------------------------------------------------------------------------------
# torch -> ONNX


def _wrappers():
    import torch
    import torch.nn as nn

    class EncoderGraph(nn.Module):
        """feats [1, T, mel] un-normalised log-mel -> encoder frames [1, T', dim] (normalisation inside)."""

        def __init__(self, model):
            super().__init__()
            self.encoder = model.encoder

        def forward(self, feats):
            lengths = torch.ones_like(feats[:, :, 0], dtype=torch.int64).sum(dim=1)  # [1] = T, traced dynamically
            enc, _ = self.encoder(feats, lengths)
            return enc

    class PredictorGraph(nn.Module):
        """token [1, 1] int64, h, c [layers, 1, hidden] -> output [1, hidden], h', c'."""

        def __init__(self, model):
            super().__init__()
            self.embedding = model.predictor.embedding
            self.lstm = model.predictor.lstm

        def forward(self, token, h, c):
            out, (h2, c2) = self.lstm(self.embedding(token), (h, c))
            return out[:, 0], h2, c2

    class JointGraph(nn.Module):
        """encoder frame [N, dim], predictor output [N, hidden] -> logits [N, vocab]."""

        def __init__(self, model):
            super().__init__()
            self.joint = model.joint

        def forward(self, enc, pred):
            j = self.joint
            return j.out(torch.tanh(j.enc_proj(enc) + j.pred_proj(pred)))

    return EncoderGraph, PredictorGraph, JointGraph


def export_onnx(model, out_dir: str, opset: int = 17) -> dict:
    """Writes encoder.onnx, predictor.onnx, joiner.onnx; returns name -> path."""
    import warnings

    import torch

    cfg = model.cfg
    EncoderGraph, PredictorGraph, JointGraph = _wrappers()
    L, H = cfg.predictor.layers, cfg.predictor.hidden
    specs = {
        "encoder": (EncoderGraph(model), (torch.randn(1, 237, cfg.frontend.mel_bins) - 6.0,), ["feats"], ["enc"],
                    {"feats": {1: "T"}, "enc": {1: "T_enc"}}),
        "predictor": (PredictorGraph(model), (torch.tensor([[cfg.blank_id]]), torch.zeros(L, 1, H), torch.zeros(L, 1, H)),
                      ["token", "h", "c"], ["pred", "h_out", "c_out"], None),
        "joiner": (JointGraph(model), (torch.randn(1, cfg.encoder.dim), torch.randn(1, H)), ["enc", "pred"], ["logits"],
                   {"enc": {0: "N"}, "pred": {0: "N"}, "logits": {0: "N"}}),
    }
    paths = {}
    for name, (mod, args, inputs, outputs, axes) in specs.items():
        path = os.path.join(out_dir, f"{name}.onnx")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(mod.eval(), args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        paths[name] = path
    return paths


def quantize_int8(paths: dict, out_dir: str) -> dict:
    """ONNX Runtime dynamic quantization (int8 weights, activations quantized per call) of each graph."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice, once per graph
    out = {}
    for name, path in paths.items():
        q = os.path.join(out_dir, f"{name}.int8.onnx")
        quantize_dynamic(path, q, weight_type=QuantType.QInt8)
        out[name] = q
    return out


# ---------------------------------------------------------------------------------------------------------------
# ORT inference


class OrtModel:
    def __init__(self, cfg, paths: dict, threads: int = 1):
        import onnxruntime as ort

        self.cfg = cfg
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        mk = lambda p: ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])  # noqa: E731
        self.encoder = mk(paths["encoder"])
        self.predictor = mk(paths["predictor"])
        self.joiner = mk(paths["joiner"])

    def encode(self, feats: np.ndarray) -> np.ndarray:
        """feats [T, mel] un-normalised log-mel -> [T', dim]."""
        return self.encoder.run(None, {"feats": np.ascontiguousarray(feats[None], dtype=np.float32)})[0][0]

    def greedy(self, enc: np.ndarray) -> list[int]:
        """Architecture.md section 5: per frame up to max_symbols_per_frame non-blank symbols; a non-blank symbol
        advances the predictor; the start state is the predictor fed with blank."""
        cfg = self.cfg
        blank = cfg.blank_id
        L, H = cfg.predictor.layers, cfg.predictor.hidden
        h = np.zeros((L, 1, H), np.float32)
        c = np.zeros((L, 1, H), np.float32)
        pred, h, c = self.predictor.run(None, {"token": np.array([[blank]], np.int64), "h": h, "c": c})
        hyp: list[int] = []
        for t in range(enc.shape[0]):
            frame = enc[t:t + 1]
            for _ in range(cfg.max_symbols_per_frame):
                logits = self.joiner.run(None, {"enc": frame, "pred": pred})[0][0]
                k = int(np.argmax(logits))
                if k == blank:
                    break
                hyp.append(k)
                pred, h, c = self.predictor.run(None, {"token": np.array([[k]], np.int64), "h": h, "c": c})
        return hyp


def decode_text(ids, pieces) -> str:
    """Architecture.md section 8."""
    return "".join(pieces[i] for i in ids if i != 0).replace("\u2581", " ").strip()


# ---------------------------------------------------------------------------------------------------------------
# data


def read_set(directory: str):
    """[(id, audio path)] of transcripts.tsv, the way usm-infer's EvaluationSet reads it."""
    tsv = os.path.join(directory, "transcripts.tsv")
    items = []
    with open(tsv, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l]
    for n, line in enumerate(lines):
        fields = line.split("\t")
        if n == 0 and fields[0] == "id":
            continue
        if len(fields) < 3:
            raise ValueError(f"{tsv} line {n + 1}: expected id, seconds, transcript")
        base = os.path.join(directory, fields[0])
        audio = next((base + "." + e for e in AUDIO_EXTENSIONS if os.path.exists(base + "." + e)), None)
        if audio is None:
            raise ValueError(f"no audio file for '{fields[0]}' in {directory}")
        items.append((fields[0], audio))
    return items


def load_audio(path: str):
    """Mono float32 samples (channels averaged) and their sample rate."""
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1).astype(np.float32), sr


def resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    if resample_poly is not None:
        g = math.gcd(sr, target)
        return resample_poly(x.astype(np.float64), target // g, sr // g).astype(np.float32)
    n = int(round(len(x) * target / sr))  # no scipy: linear interpolation
    return np.interp(np.arange(n) * sr / target, np.arange(len(x)), x).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------


def transcribe_set(ort_model: OrtModel, audio: list, pieces) -> tuple[float, dict]:
    """audio: [(id, samples, rate)] -> (compute seconds, id -> text)."""
    from usm_ref.frontend import log_mel_np

    cfg = ort_model.cfg
    compute = 0.0
    hyps = {}
    for uid, x, sr in audio:
        t0 = time.perf_counter()
        y = resample(x, sr, cfg.sample_rate)
        feats = log_mel_np(y, cfg.frontend, cfg.sample_rate)
        ids = []
        if feats.shape[0] > 0:
            ids = ort_model.greedy(ort_model.encode(feats))
        compute += time.perf_counter() - t0
        hyps[uid] = decode_text(ids, pieces)
    return compute, hyps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="usm-infer model file, f32 (recipe exp0), or packed with --dequantize")
    ap.add_argument("--dequantize", action="store_true",
                    help="accept a packed model and run its weights dequantized to f32 (the same numbers a float "
                         "runtime would have to use)")
    ap.add_argument("directory", help="folder with transcripts.tsv and <id>.flac/.wav")
    ap.add_argument("--limit", type=int, default=0, help="only the first N utterances")
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    ap.add_argument("--rounds", type=int, default=1,
                    help="transcribe the set this many times per variant; compute_seconds is the median round")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--keep", help="write the ONNX graphs to this folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)

    def skip(reason):
        print(json.dumps({"skip": reason}))
        return 0

    try:
        import onnxruntime as ort
        import onnx  # noqa: F401  (quantize_dynamic needs it)
        import torch
    except ImportError as e:
        return skip(f"torch/onnxruntime/onnx not importable: {e}")
    try:
        import soundfile  # noqa: F401
        import xxhash  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError as e:
        return skip(f"a Python dependency is missing: {e}")
    torch.set_num_threads(max(1, args.threads))
    try:
        cfg, weights, pieces = read_usm(args.model, require_f32=not args.dequantize)
    except Skip as e:
        return skip(str(e))
    model = load_torch_model(cfg, weights)
    items = read_set(args.directory)
    if args.limit:
        items = items[: args.limit]
    audio = []
    seconds = 0.0
    for uid, path in items:
        x, sr = load_audio(path)
        audio.append((uid, x, sr))
        seconds += len(x) / sr

    tmp = None
    out_dir = args.keep
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="usm-onnx-")
        out_dir = tmp.name
    os.makedirs(out_dir, exist_ok=True)
    try:
        t0 = time.perf_counter()
        f32_paths = export_onnx(model, out_dir, args.opset)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        int8_paths = quantize_int8(f32_paths, out_dir)
        quant_s = time.perf_counter() - t0
        sizes = {n: sum(os.path.getsize(p) for p in ps.values()) for n, ps in (("ort-f32", f32_paths), ("ort-int8", int8_paths))}
        variants = []
        warm = [("warmup", np.zeros(cfg.sample_rate, np.float32), cfg.sample_rate),
                ("warmup8k", np.zeros(8000, np.float32), 8000)]
        for name, paths in (("ort-f32", f32_paths), ("ort-int8", int8_paths)):
            om = OrtModel(cfg, paths, args.threads)
            transcribe_set(om, warm, pieces)  # first-run allocations, untimed
            rounds = []
            for _ in range(max(1, args.rounds)):
                compute, hyps = transcribe_set(om, audio, pieces)
                rounds.append(compute)
            compute = sorted(rounds)[(len(rounds) - 1) // 2]  # the median round (the lower one of an even count, as usm-bench)
            variants.append({"name": name, "utterances": len(audio), "audio_seconds": seconds,
                             "compute_seconds": compute, "rtf": compute / max(seconds, 1e-9),
                             "round_seconds": rounds, "onnx_bytes": sizes[name], "hypotheses": hyps})
    finally:
        if tmp is not None:
            tmp.cleanup()
    note = (f"torch.onnx.export (opset {args.opset}, legacy exporter) of encoder / predictor step / joiner; "
            f"ort-int8 = onnxruntime.quantization.quantize_dynamic (QInt8 weights); log-mel frontend in numpy "
            f"(usm_ref.frontend.log_mel_np), not ONNX; greedy search in Python over ORT sessions; "
            f"{args.threads} intra-op thread(s); compute = resample + features + encoder + search "
            f"(median of {max(1, args.rounds)} round(s), after an untimed warm-up) "
            f"(export {export_s:.1f} s, quantization {quant_s:.1f} s and session creation excluded)"
            + ("; the model's packed weights were dequantized to f32 for ORT" if args.dequantize else ""))
    print(json.dumps({"variants": variants, "onnxruntime": ort.__version__, "torch": torch.__version__,
                      "model": args.model, "note": note}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
