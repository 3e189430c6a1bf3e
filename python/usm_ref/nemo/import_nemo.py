"""Imports a NeMo Conformer/FastConformer transducer (`.nemo`) into a usm-infer container.

    python -m usm_ref.nemo.import_nemo MODEL.nemo OUT.usm [--level N]

Reads the `.nemo` tar (`model_config.yaml`, `model_weights.ckpt` via torch.load(map_location='cpu',
weights_only=True), the SentencePiece `.model`), checks that every option is one the reference/executor implements,
and writes f32 tensors under the names of docs/nemo-import.md with BatchNorm folded into the depthwise convs and the
LSTM biases merged. Exit codes: 0 ok, 65 unsupported model (the message names the option), 66 unreadable input.
Needs numpy, pyyaml, xxhash and zstandard (for the container); torch is used for the checkpoint when installed,
else a restricted torch-free reader of the same zip format (`read_torch_zip`).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import sys
import tarfile

import numpy as np

EX_UNSUPPORTED = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69

LN_EPS = 1e-5  # torch.nn.LayerNorm default; NeMo never overrides it in ConformerLayer
BN_EPS = 1e-5  # torch.nn.BatchNorm1d default

# Defaults of nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor (NeMo 3.0.0) for keys a config omits.
PREPROCESSOR_DEFAULTS = {
    "sample_rate": 16000, "window_size": 0.02, "window_stride": 0.01, "n_window_size": None,
    "n_window_stride": None, "window": "hann", "normalize": "per_feature", "n_fft": None, "preemph": 0.97,
    "features": 64, "lowfreq": 0, "highfreq": None, "log": True, "log_zero_guard_type": "add",
    "log_zero_guard_value": 2 ** -24, "dither": 1e-5, "pad_to": 16, "frame_splicing": 1, "exact_pad": False,
    "pad_value": 0, "mag_power": 2.0, "nb_augmentation_prob": 0.0, "mel_norm": "slaney",
}
# Defaults of nemo.collections.asr.modules.ConformerEncoder (NeMo 3.0.0).
ENCODER_DEFAULTS = {
    "feat_out": -1, "causal_downsampling": False, "subsampling": "striding", "subsampling_factor": 4,
    "subsampling_conv_chunking_factor": 1, "subsampling_conv_channels": -1, "reduction": None,
    "reduction_position": None, "reduction_factor": 1, "ff_expansion_factor": 4, "self_attention_model": "rel_pos",
    "n_heads": 4, "att_context_size": None, "att_context_probs": None, "att_chunk_context_size": None,
    "att_context_style": "regular", "xscaling": True, "untie_biases": True, "pos_emb_max_len": 5000,
    "conv_kernel_size": 31, "conv_norm_type": "batch_norm", "conv_context_size": None,
    "conv_context_style": "regular", "use_bias": True, "stochastic_depth_drop_prob": 0.0, "global_tokens": 0,
    "use_pytorch_sdpa": False,
}


class Unsupported(Exception):
    """A model option the importer/executor does not implement; str() names the option."""


class BadInput(Exception):
    pass


# ----------------------------------------------------------------------------------------------------------------
# Reading the archive


def _member(tar: tarfile.TarFile, basename_suffix: str):
    for m in tar.getmembers():
        if m.isfile() and os.path.basename(m.name).endswith(basename_suffix):
            return m
    return None


def _open(path):
    try:
        return tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise BadInput(f"{path}: not a .nemo archive ({e})")


def read_config(path: str) -> dict:
    """model_config.yaml of a .nemo archive, parsed (needs pyyaml, not torch)."""
    import yaml
    with _open(path) as tar:
        m = _member(tar, "model_config.yaml")
        if m is None:
            raise BadInput(f"{path}: no model_config.yaml in the archive")
        return yaml.safe_load(tar.extractfile(m).read().decode())


def read_tokenizer(path: str, cfg: dict):
    """(bytes, file name) of the SentencePiece model named by tokenizer.model_path, or (None, None)."""
    mp = (cfg.get("tokenizer") or {}).get("model_path")
    if not isinstance(mp, str):
        return None, None
    name = mp[len("nemo:"):] if mp.startswith("nemo:") else os.path.basename(mp)
    with _open(path) as tar:
        tm = _member(tar, name)
        return (tar.extractfile(tm).read(), name) if tm is not None else (None, None)


_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "?"}


def read_torch_zip(raw: bytes) -> dict:
    """A torch-free reader of a torch.save zip checkpoint holding a state_dict (what model_weights.ckpt is):
    data.pkl unpickled with only OrderedDict, torch.*Storage markers and torch._utils._rebuild_tensor_v2 allowed
    (anything else is refused, like weights_only=True), storages read from data/<key> (little-endian)."""
    import collections
    import pickle
    import zipfile
    zf = zipfile.ZipFile(io.BytesIO(raw))
    names = zf.namelist()
    pkl = next((n for n in names if n.endswith("data.pkl")), None)
    if pkl is None:
        raise BadInput("model_weights.ckpt: not a torch zip checkpoint (legacy format needs torch)")
    prefix = pkl[: -len("data.pkl")]
    if prefix + "byteorder" in names and zf.read(prefix + "byteorder").decode().strip() != "little":
        raise BadInput("model_weights.ckpt: big-endian checkpoint")
    cache = {}

    def storage(pid):
        kind, stype, key, _location, _numel = pid
        if kind != "storage" or stype not in _STORAGES:
            raise BadInput(f"model_weights.ckpt: unsupported storage {pid!r}")
        if key not in cache:
            buf = zf.read(f"{prefix}data/{key}")
            dt = _STORAGES[stype]
            if dt == "bf16":
                cache[key] = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                cache[key] = np.frombuffer(buf, dt)
        return cache[key]

    def rebuild(st, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if len(size) == 0:
            return np.array(st[offset])
        a = st[offset:]
        return np.lib.stride_tricks.as_strided(a, shape=tuple(size),
                                               strides=tuple(x * a.itemsize for x in stride)).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in _STORAGES:
                return name
            raise BadInput(f"model_weights.ckpt: refusing to load {module}.{name}")

        def persistent_load(self, pid):
            return storage(pid)

    sd = Unpickler(io.BytesIO(zf.read(pkl))).load()
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in sd.items()
            if isinstance(v, np.ndarray)}


def read_weights(path: str, use_torch: bool | None = None) -> dict:
    """model_weights.ckpt -> {key: np.ndarray}: torch.load(map_location='cpu', weights_only=True) when torch is
    installed (or use_torch=True), else the torch-free `read_torch_zip`."""
    with _open(path) as tar:
        m = _member(tar, "model_weights.ckpt")
        if m is None:
            raise BadInput(f"{path}: no model_weights.ckpt in the archive (distributed checkpoints unsupported)")
        raw = tar.extractfile(m).read()
    torch = None
    if use_torch is not False:
        try:
            import torch
        except ImportError:
            if use_torch:
                raise
    if torch is None:
        return read_torch_zip(raw)
    sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    weights = {}
    for k, v in sd.items():
        if hasattr(v, "detach"):
            weights[k] = v.detach().to(torch.float32).numpy() if v.is_floating_point() else v.detach().numpy()
    return weights


def sentencepiece_pieces(model: bytes):
    """Minimal protobuf walk of a SentencePiece ModelProto: field 1 = repeated SentencePiece {1: piece, 2: score,
    3: type}. Returns [(piece, score, type)] in id order (type 1 normal, 2 unknown, 3 control, 4 user, 6 byte)."""
    def varint(b, i):
        r = s = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i

    def fields(b):
        i = 0
        while i < len(b):
            key, i = varint(b, i)
            f, wt = key >> 3, key & 7
            if wt == 0:
                v, i = varint(b, i)
            elif wt == 1:
                v, i = b[i:i + 8], i + 8
            elif wt == 2:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            elif wt == 5:
                v, i = b[i:i + 4], i + 4
            else:
                raise BadInput(f"tokenizer model: unsupported protobuf wire type {wt}")
            yield f, wt, v

    out = []
    for f, wt, v in fields(model):
        if f == 1 and wt == 2:
            piece, score, typ = "", 0.0, 1
            for g, gwt, gv in fields(v):
                if g == 1:
                    piece = bytes(gv).decode("utf-8")
                elif g == 2:
                    score = float(np.frombuffer(bytes(gv), "<f4")[0])
                elif g == 3:
                    typ = gv
            out.append((piece, score, typ))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Config checks and the architecture object


def _short(target):
    return (target or "").rsplit(".", 1)[-1]


def resolve_preprocessor(p: dict) -> dict:
    if _short(p.get("_target_")) != "AudioToMelSpectrogramPreprocessor":
        raise Unsupported(f"preprocessor._target_={p.get('_target_')} (only AudioToMelSpectrogramPreprocessor)")
    r = dict(PREPROCESSOR_DEFAULTS)
    r.update({k: v for k, v in p.items() if k in r})
    unknown = sorted(set(p) - set(PREPROCESSOR_DEFAULTS) - {"_target_", "use_torchaudio", "stft_conv",
                                                             "stft_exact_pad", "rng", "nb_max_freq"})
    if unknown:
        raise Unsupported(f"preprocessor options {unknown}")
    sr = r["sample_rate"]
    win = r["n_window_size"] or int(r["window_size"] * sr)
    hop = r["n_window_stride"] or int(r["window_stride"] * sr)
    n_fft = r["n_fft"] or 2 ** math.ceil(math.log2(win))
    if r["window"] not in ("hann", "hamming", "blackman", "bartlett", "none"):
        raise Unsupported(f"preprocessor.window={r['window']}")
    if r["normalize"] not in ("per_feature", "all_features", None, "NA", "none", ""):
        raise Unsupported(f"preprocessor.normalize={r['normalize']} (per_feature, all_features or none)")
    if r["frame_splicing"] != 1:
        raise Unsupported(f"preprocessor.frame_splicing={r['frame_splicing']} (only 1)")
    if r["exact_pad"]:
        raise Unsupported("preprocessor.exact_pad=true (only the centred STFT)")
    if r["log_zero_guard_type"] not in ("add", "clamp"):
        raise Unsupported(f"preprocessor.log_zero_guard_type={r['log_zero_guard_type']}")
    if isinstance(r["log_zero_guard_value"], str):
        if r["log_zero_guard_value"] not in ("tiny", "eps"):
            raise Unsupported(f"preprocessor.log_zero_guard_value={r['log_zero_guard_value']}")
        r["log_zero_guard_value"] = float(np.finfo(np.float32).tiny if r["log_zero_guard_value"] == "tiny"
                                          else np.finfo(np.float32).eps)
    if r["mel_norm"] not in ("slaney", None):
        raise Unsupported(f"preprocessor.mel_norm={r['mel_norm']}")
    normalize = r["normalize"] if r["normalize"] in ("per_feature", "all_features") else "none"
    return {
        "sample_rate": sr, "window_size": r["window_size"], "window_stride": r["window_stride"],
        "win_length": win, "hop_length": hop, "n_fft": n_fft, "window": r["window"], "window_periodic": False,
        "features": r["features"], "lowfreq": r["lowfreq"], "highfreq": r["highfreq"] or sr / 2,
        "mel_norm": r["mel_norm"], "mel_scale": "slaney", "preemph": r["preemph"], "log": bool(r["log"]),
        "log_zero_guard_type": r["log_zero_guard_type"], "log_zero_guard_value": float(r["log_zero_guard_value"]),
        "normalize": normalize, "normalize_epsilon": 1e-5, "std_ddof": 1, "dither": r["dither"],
        "dither_at_inference": False, "pad_to": r["pad_to"], "pad_value": r["pad_value"],
        "mag_power": r["mag_power"], "frame_splicing": r["frame_splicing"], "center": True,
        "stft_pad_mode": "constant", "exact_pad": False,
    }


def resolve_encoder(e: dict, notes: list) -> dict:
    if _short(e.get("_target_")) != "ConformerEncoder":
        raise Unsupported(f"encoder._target_={e.get('_target_')} (only ConformerEncoder)")
    r = dict(ENCODER_DEFAULTS)
    r.update({k: v for k, v in e.items() if k != "_target_"})
    if r["self_attention_model"] != "rel_pos":
        raise Unsupported(f"encoder.self_attention_model={r['self_attention_model']} (only rel_pos)")
    if r["att_context_style"] != "regular":
        raise Unsupported(f"encoder.att_context_style={r['att_context_style']} (only regular)")
    acs = r["att_context_size"]
    if acs is None:
        acs = [-1, -1]
    acs = [list(a) for a in acs] if acs and isinstance(acs[0], (list, tuple)) else [list(acs)]
    if len(acs) > 1:
        notes.append(f"encoder.att_context_size lists {len(acs)} contexts; NeMo infers with the first, {acs[0]}")
    if r["subsampling"] not in ("dw_striding", "striding"):
        raise Unsupported(f"encoder.subsampling={r['subsampling']} (dw_striding or striding)")
    f = r["subsampling_factor"]
    if f < 2 or f & (f - 1):
        raise Unsupported(f"encoder.subsampling_factor={f} (a power of 2 >= 2)")
    if r["causal_downsampling"]:
        raise Unsupported("encoder.causal_downsampling=true")
    if r["reduction"] and r["reduction_factor"] > 1:
        raise Unsupported(f"encoder.reduction={r['reduction']}")
    if r["conv_norm_type"] not in ("batch_norm", "layer_norm"):
        raise Unsupported(f"encoder.conv_norm_type={r['conv_norm_type']} (batch_norm or layer_norm)")
    k = r["conv_kernel_size"]
    if r["conv_context_size"] not in (None, [(k - 1) // 2, (k - 1) // 2]):
        raise Unsupported(f"encoder.conv_context_size={r['conv_context_size']} (only symmetric)")
    if r["conv_context_style"] != "regular":
        raise Unsupported(f"encoder.conv_context_style={r['conv_context_style']}")
    if r["feat_out"] not in (-1, None, r["d_model"]):
        raise Unsupported(f"encoder.feat_out={r['feat_out']} (no output projection)")
    if r["global_tokens"]:
        raise Unsupported("encoder.global_tokens")
    if r["stochastic_depth_drop_prob"]:
        notes.append(f"encoder.stochastic_depth_drop_prob={r['stochastic_depth_drop_prob']} is training-only: "
                     "ignored (inference runs every layer)")
    if r.get("use_pytorch_sdpa"):
        notes.append("encoder.use_pytorch_sdpa only changes the kernel, not the math: ignored")
    ch = r["subsampling_conv_channels"]
    if ch == -1:
        ch = r["d_model"]
    return {
        "feat_in": r["feat_in"], "d_model": r["d_model"], "n_layers": r["n_layers"], "n_heads": r["n_heads"],
        "ff_expansion_factor": r["ff_expansion_factor"], "d_ff": r["d_model"] * r["ff_expansion_factor"],
        "subsampling": r["subsampling"], "subsampling_factor": f, "subsampling_conv_channels": ch,
        "subsampling_layers": int(round(math.log2(f))), "subsampling_kernel": 3, "subsampling_stride": 2,
        "subsampling_padding": 1, "conv_kernel_size": k, "conv_norm_type": r["conv_norm_type"],
        "conv_norm_folded": r["conv_norm_type"] == "batch_norm", "xscaling": bool(r["xscaling"]),
        "xscale": math.sqrt(r["d_model"]) if r["xscaling"] else 1.0, "untie_biases": bool(r["untie_biases"]),
        "pos_emb_max_len": r["pos_emb_max_len"], "att_context_size": acs[0], "att_context_style": "regular",
        "use_bias": bool(r["use_bias"]), "self_attention_model": "rel_pos", "layer_norm_epsilon": LN_EPS,
        "batch_norm_epsilon": BN_EPS, "pos_encoding": "interleaved_sin_cos",
    }


def resolve(cfg: dict, notes: list) -> dict:
    target = cfg.get("target", "")
    cls = _short(target)
    if "CTC" in cls and "RNNT" not in cls:
        raise Unsupported(f"target={target}: CTC-only models are not supported (transducers only)")
    if cls not in ("EncDecRNNTBPEModel", "EncDecHybridRNNTCTCBPEModel", "EncDecRNNTModel",
                   "EncDecHybridRNNTCTCModel"):
        raise Unsupported(f"target={target} (EncDecRNNTBPEModel or EncDecHybridRNNTCTCBPEModel)")
    if "BPE" not in cls:
        raise Unsupported(f"target={target}: character-vocabulary models (only SentencePiece/BPE tokenizers)")
    tok = cfg.get("tokenizer") or {}
    if tok.get("type") != "bpe":
        raise Unsupported(f"tokenizer.type={tok.get('type')} (only bpe = SentencePiece)")
    pre = resolve_preprocessor(cfg["preprocessor"])
    enc = resolve_encoder(cfg["encoder"], notes)
    if pre["features"] != enc["feat_in"]:
        raise Unsupported(f"preprocessor.features={pre['features']} != encoder.feat_in={enc['feat_in']}")
    dec = cfg["decoder"]
    if _short(dec.get("_target_")) != "RNNTDecoder":
        raise Unsupported(f"decoder._target_={dec.get('_target_')} (only RNNTDecoder, LSTM predictor)")
    if dec.get("normalization_mode") not in (None, "null"):
        raise Unsupported(f"decoder.normalization_mode={dec.get('normalization_mode')}")
    if not dec.get("blank_as_pad", True):
        raise Unsupported("decoder.blank_as_pad=false")
    pn = dec["prednet"]
    if pn.get("rnn_hidden_size", -1) not in (-1, None, pn["pred_hidden"]):
        raise Unsupported(f"decoder.prednet.rnn_hidden_size={pn.get('rnn_hidden_size')} (LSTM projection)")
    joint = cfg["joint"]
    if _short(joint.get("_target_")) != "RNNTJoint":
        raise Unsupported(f"joint._target_={joint.get('_target_')} (only RNNTJoint)")
    jn = joint["jointnet"]
    if jn["activation"] not in ("relu", "tanh", "sigmoid"):
        raise Unsupported(f"joint.jointnet.activation={jn['activation']}")
    vocab = int(dec["vocab_size"])
    loss = (cfg.get("loss") or {}).get("loss_name", "default")
    decoding = cfg.get("decoding") or {}
    durations = list(cfg.get("model_defaults", {}).get("tdt_durations") or decoding.get("durations") or [])
    tdt = str(loss).startswith("tdt") or decoding.get("model_type") == "tdt" or bool(durations)
    if loss == "multiblank_rnnt" or decoding.get("big_blank_durations"):
        raise Unsupported("multi-blank transducers (loss multiblank_rnnt / big_blank_durations)")
    extra = int(joint.get("num_extra_outputs", 0) or 0)
    if tdt and extra != len(durations):
        raise Unsupported(f"TDT with joint.num_extra_outputs={extra} != len(durations)={len(durations)}")
    if not tdt and extra:
        raise Unsupported(f"joint.num_extra_outputs={extra} without TDT durations")
    hybrid = "Hybrid" in cls
    fast = enc["subsampling"] == "dw_striding"
    kind = ("fastconformer" if fast else "conformer") + ("-tdt" if tdt else "-rnnt") + ("-ctc" if hybrid else "")
    greedy = decoding.get("greedy") or {}
    arch = {
        "type": "nemo-" + kind if not hybrid else "nemo-" + kind.replace("-ctc", "") + "-hybrid-ctc",
        "nemo_target": target, "nemo_version": cfg.get("nemo_version"),
        "sample_rate": pre["sample_rate"], "preprocessor": pre, "encoder": enc,
        "predictor": {"pred_hidden": pn["pred_hidden"], "pred_rnn_layers": pn["pred_rnn_layers"],
                      "blank_as_pad": True, "embedding_rows": vocab + 1, "start": "zero_vector",
                      "lstm_gate_order": "ifgo", "forget_gate_bias_init": pn.get("forget_gate_bias", 1.0)},
        "joint": {"joint_hidden": jn["joint_hidden"], "activation": jn["activation"],
                  "num_classes": vocab + 1 + extra, "num_extra_outputs": extra, "durations": durations},
        "vocab_size": vocab, "blank_id": vocab, "tdt": tdt, "durations": durations,
        "decoding": {"strategy": decoding.get("strategy", "greedy_batch"),
                     "max_symbols": greedy.get("max_symbols", greedy.get("max_symbols_per_step", 10)),
                     "loop": "label_looping"},
    }
    if hybrid:
        aux = cfg.get("aux_ctc") or {}
        arch["ctc"] = {"num_classes": vocab + 1, "blank_id": vocab, "ctc_loss_weight": aux.get("ctc_loss_weight"),
                       "default_decoder": "rnnt"}
    arch["nemo_config"] = _jsonable(cfg)
    return arch


def _jsonable(x):
    return json.loads(json.dumps(x, default=str))


# ----------------------------------------------------------------------------------------------------------------
# Tensors


def fold_batch_norm(w, b, gamma, beta, mean, var, eps=BN_EPS):
    """Depthwise conv [D, K] (+ bias [D] or None) followed by BatchNorm1d(D) in eval mode ->
    w' = w * s[:, None], b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps). Computed in float64,
    rounded to float32."""
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    bb = np.zeros_like(mean, dtype=np.float64) if b is None else b.astype(np.float64)
    return ((w.astype(np.float64) * s[:, None]).astype(np.float32),
            ((bb - mean.astype(np.float64)) * s + beta.astype(np.float64)).astype(np.float32))


def convert(arch: dict, sd: dict) -> tuple[dict, list]:
    """NeMo state_dict -> (ordered {container name: f32 array}, [(nemo keys, container name)])."""
    out, mapping, used = {}, [], set()
    enc = arch["encoder"]

    def take(key, required=True):
        if key not in sd:
            if required:
                raise BadInput(f"checkpoint lacks {key}")
            return None
        used.add(key)
        return np.ascontiguousarray(sd[key], dtype=np.float32)

    def put(name, arr, *keys):
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
        mapping.append((list(keys), name, list(out[name].shape)))

    def bias_or_zero(key, n):
        b = take(key, required=False)
        return b if b is not None else np.zeros(n, np.float32)

    pre = "preprocessor.featurizer."
    put("preprocessor.window", take(pre + "window"), pre + "window")
    put("preprocessor.filterbank", take(pre + "fb")[0], pre + "fb")

    p = "encoder.pre_encode."
    L = enc["subsampling_layers"]
    if enc["subsampling"] == "striding":
        for k in range(L):  # Conv2d at sequential indices 0, 2, 4, ... (ReLU between)
            put(f"encoder.subsampling.conv{k}.weight", take(f"{p}conv.{2 * k}.weight"), f"{p}conv.{2 * k}.weight")
            put(f"encoder.subsampling.conv{k}.bias", take(f"{p}conv.{2 * k}.bias"), f"{p}conv.{2 * k}.bias")
    else:  # dw_striding: conv.0 (full 3x3), then per stage conv.{3k-1} depthwise 3x3, conv.{3k} pointwise 1x1
        put("encoder.subsampling.conv0.weight", take(p + "conv.0.weight"), p + "conv.0.weight")
        put("encoder.subsampling.conv0.bias", take(p + "conv.0.bias"), p + "conv.0.bias")
        for k in range(1, L):
            dw, pw = 3 * k - 1, 3 * k
            put(f"encoder.subsampling.dw{k}.weight", take(f"{p}conv.{dw}.weight"), f"{p}conv.{dw}.weight")
            put(f"encoder.subsampling.dw{k}.bias", take(f"{p}conv.{dw}.bias"), f"{p}conv.{dw}.bias")
            w = take(f"{p}conv.{pw}.weight")
            put(f"encoder.subsampling.pw{k}.weight", w.reshape(w.shape[0], w.shape[1]), f"{p}conv.{pw}.weight")
            put(f"encoder.subsampling.pw{k}.bias", take(f"{p}conv.{pw}.bias"), f"{p}conv.{pw}.bias")
    put("encoder.subsampling.out.weight", take(p + "out.weight"), p + "out.weight")
    put("encoder.subsampling.out.bias", take(p + "out.bias"), p + "out.bias")

    D, H = enc["d_model"], enc["n_heads"]
    def ffn(s, o, n):
        """Feed-forward module n (1 or 2) of one layer: two linears with their biases (zeros where NeMo has none)."""
        for lin in ("linear1", "linear2"):
            w = take(f"{s}feed_forward{n}.{lin}.weight")
            put(f"{o}ffn{n}.{lin}.weight", w, f"{s}feed_forward{n}.{lin}.weight")
            put(f"{o}ffn{n}.{lin}.bias", bias_or_zero(f"{s}feed_forward{n}.{lin}.bias", w.shape[0]),
                f"{s}feed_forward{n}.{lin}.bias")

    for i in range(enc["n_layers"]):
        s, o = f"encoder.layers.{i}.", f"encoder.layers.{i}."
        for nm, nk in (("ffn1.norm", "norm_feed_forward1"), ("mhsa.norm", "norm_self_att"),
                       ("conv.norm", "norm_conv"), ("ffn2.norm", "norm_feed_forward2"), ("final_norm", "norm_out")):
            put(o + nm + ".scale", take(s + nk + ".weight"), s + nk + ".weight")
            put(o + nm + ".bias", take(s + nk + ".bias"), s + nk + ".bias")
            if nm in ("ffn1.norm", "ffn2.norm"):
                ffn(s, o, nm[3])
            if nm == "mhsa.norm":
                for our, theirs in (("query", "linear_q"), ("key", "linear_k"), ("value", "linear_v"),
                                    ("out", "linear_out")):
                    put(f"{o}mhsa.{our}.weight", take(f"{s}self_attn.{theirs}.weight"), f"{s}self_attn.{theirs}.weight")
                    put(f"{o}mhsa.{our}.bias", bias_or_zero(f"{s}self_attn.{theirs}.bias", D),
                        f"{s}self_attn.{theirs}.bias")
                put(f"{o}mhsa.pos.weight", take(f"{s}self_attn.linear_pos.weight"), f"{s}self_attn.linear_pos.weight")
                for uv in ("u", "v"):
                    key = f"{s}self_attn.pos_bias_{uv}"
                    if key not in sd and f"encoder.pos_bias_{uv}" in sd:
                        key = f"encoder.pos_bias_{uv}"
                    put(f"{o}mhsa.{uv}", take(key).reshape(H, D // H), key)
            if nm == "conv.norm":
                c = s + "conv."
                w = take(c + "pointwise_conv1.weight")
                put(o + "conv.pointwise1.weight", w.reshape(w.shape[0], w.shape[1]), c + "pointwise_conv1.weight")
                put(o + "conv.pointwise1.bias", bias_or_zero(c + "pointwise_conv1.bias", w.shape[0]),
                    c + "pointwise_conv1.bias")
                dw = take(c + "depthwise_conv.weight")
                dw = dw.reshape(dw.shape[0], dw.shape[-1])
                dwb = take(c + "depthwise_conv.bias", required=False)
                if enc["conv_norm_type"] == "batch_norm":
                    g, be = take(c + "batch_norm.weight"), take(c + "batch_norm.bias")
                    mu, var = take(c + "batch_norm.running_mean"), take(c + "batch_norm.running_var")
                    used.add(c + "batch_norm.num_batches_tracked")
                    fw, fb = fold_batch_norm(dw, dwb, g, be, mu, var)
                    keys = [c + "depthwise_conv.weight", c + "depthwise_conv.bias", c + "batch_norm.weight",
                            c + "batch_norm.bias", c + "batch_norm.running_mean", c + "batch_norm.running_var"]
                    put(o + "conv.depthwise.weight", fw, *keys)
                    put(o + "conv.depthwise.bias", fb, *keys)
                else:  # layer_norm over channels after the depthwise conv: kept as is
                    put(o + "conv.depthwise.weight", dw, c + "depthwise_conv.weight")
                    put(o + "conv.depthwise.bias", dwb if dwb is not None else np.zeros(dw.shape[0], np.float32),
                        c + "depthwise_conv.bias")
                    put(o + "conv.dw_norm.scale", take(c + "batch_norm.weight"), c + "batch_norm.weight")
                    put(o + "conv.dw_norm.bias", take(c + "batch_norm.bias"), c + "batch_norm.bias")
                w = take(c + "pointwise_conv2.weight")
                put(o + "conv.pointwise2.weight", w.reshape(w.shape[0], w.shape[1]), c + "pointwise_conv2.weight")
                put(o + "conv.pointwise2.bias", bias_or_zero(c + "pointwise_conv2.bias", w.shape[0]),
                    c + "pointwise_conv2.bias")

    d = "decoder.prediction."
    put("predictor.embedding", take(d + "embed.weight"), d + "embed.weight")
    for l in range(arch["predictor"]["pred_rnn_layers"]):
        r = f"{d}dec_rnn.lstm."
        wih, whh = take(f"{r}weight_ih_l{l}"), take(f"{r}weight_hh_l{l}")
        put(f"predictor.lstm.{l}.weight", np.concatenate([wih, whh], axis=1), f"{r}weight_ih_l{l}", f"{r}weight_hh_l{l}")
        b = take(f"{r}bias_ih_l{l}").astype(np.float64) + take(f"{r}bias_hh_l{l}").astype(np.float64)
        put(f"predictor.lstm.{l}.bias", b.astype(np.float32), f"{r}bias_ih_l{l}", f"{r}bias_hh_l{l}")
    for our, theirs in (("enc_proj", "enc"), ("pred_proj", "pred"), ("out", "joint_net.2")):
        key = f"joint.{theirs}"
        if our == "out" and key + ".weight" not in sd:
            key = "joint.joint_net.1"  # no dropout layer in the Sequential
        put(f"joint.{our}.weight", take(key + ".weight"), key + ".weight")
        put(f"joint.{our}.bias", take(key + ".bias"), key + ".bias")
    if "ctc" in arch:
        k = "ctc_decoder.decoder_layers.0."
        w = take(k + "weight")
        put("ctc.weight", w.reshape(w.shape[0], w.shape[1]), k + "weight")
        put("ctc.bias", take(k + "bias"), k + "bias")
    left = sorted(set(sd) - used)
    if left:
        raise Unsupported(f"checkpoint tensors the importer does not know: {left[:8]}{' ...' if len(left) > 8 else ''}")
    return out, mapping


def validate_shapes(arch, t):
    enc = arch["encoder"]
    D, C = enc["d_model"], enc["subsampling_conv_channels"]
    F = arch["preprocessor"]["features"]
    for _ in range(enc["subsampling_layers"]):
        F = (F + 2 - 3) // 2 + 1
    exp = {"encoder.subsampling.out.weight": (D, C * F), "joint.out.weight": (arch["joint"]["num_classes"],
                                                                              arch["joint"]["joint_hidden"]),
           "predictor.embedding": (arch["vocab_size"] + 1, arch["predictor"]["pred_hidden"]),
           "preprocessor.filterbank": (arch["preprocessor"]["features"], arch["preprocessor"]["n_fft"] // 2 + 1)}
    for k, s in exp.items():
        if tuple(t[k].shape) != s:
            raise BadInput(f"{k} has shape {t[k].shape}, the config implies {s}")


def tokenizer_object(arch, tok_bytes, tok_name, cfg):
    vocab = arch["vocab_size"]
    if tok_bytes is not None:
        entries = sentencepiece_pieces(tok_bytes)
        pieces = [p for p, _, _ in entries]
        types = [t for _, _, t in entries]
    else:
        pieces = list((cfg.get("joint") or {}).get("vocabulary") or cfg.get("labels") or [])
        types = [1] * len(pieces)
    if len(pieces) != vocab:
        raise BadInput(f"tokenizer has {len(pieces)} pieces, decoder.vocab_size is {vocab}")
    unk = next((i for i, t in enumerate(types) if t == 2), None)
    obj = {"type": "sentencepiece", "pieces": pieces + ["<blank>"], "blank_id": vocab,
           "piece_types": types + [3], "nemo_tokenizer_type": "bpe"}
    if unk is not None:
        obj["unk_id"] = unk
    if tok_bytes is not None:
        obj["model_file"] = tok_name
        obj["model_sha256"] = hashlib.sha256(tok_bytes).hexdigest()
        obj["model_base64"] = base64.b64encode(tok_bytes).decode()
    return obj


def import_nemo(src: str, dst: str, level: int | None = 19) -> dict:
    from .. import container, quant
    cfg = read_config(src)
    notes = []
    arch = resolve(cfg, notes)  # refuses unsupported options before the weights are read
    sd = read_weights(src)
    tok_bytes, tok_name = read_tokenizer(src, cfg)
    tensors, mapping = convert(arch, sd)
    validate_shapes(arch, tensors)
    arch["import_notes"] = notes
    meta = {"architecture": arch, "tokenizer": tokenizer_object(arch, tok_bytes, tok_name, cfg),
            "nemo_mapping": [{"nemo": k, "name": n, "shape": s} for k, n, s in mapping],
            "provenance": {"tool": "usm_ref.nemo.import_nemo", "created": "fixed",
                           "source": os.path.basename(src)}}
    packed = {n: quant.quantize(a, "f32") for n, a in tensors.items()}
    container.write(dst, packed, meta, level=level)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m usm_ref.nemo.import_nemo", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a .nemo file")
    ap.add_argument("out", help="the container to write")
    ap.add_argument("--level", type=int, default=19, help="zstd level (default 19)")
    a = ap.parse_args(argv)
    try:
        meta = import_nemo(a.model, a.out, a.level)
    except Unsupported as e:
        print(f"import_nemo: unsupported model: {e}", file=sys.stderr)
        return EX_UNSUPPORTED
    except (BadInput, FileNotFoundError) as e:
        print(f"import_nemo: {e}", file=sys.stderr)
        return EX_NOINPUT
    except ImportError as e:
        print(f"import_nemo: {e}", file=sys.stderr)
        return EX_UNAVAILABLE
    arch = meta["architecture"]
    for n in arch["import_notes"]:
        print(f"note: {n}", file=sys.stderr)
    print(f"{a.out}: {arch['type']}, {len(meta['nemo_mapping'])} tensors, vocab {arch['vocab_size']} + blank")
    return 0


if __name__ == "__main__":
    sys.exit(main())
