#!/usr/bin/env python3
"""The peer for NeMo models (issue 24): one `.nemo` transducer run offline on the same audio, in the same run, by
ONNX Runtime through NeMo's own ONNX export (f32, and ORT's dynamic int8 quantization) and by usm-infer (the f32
import and the paper's recipes). Runs in the NeMo environment (python/scripts/nemo_env.sh) with onnx and
onnxruntime installed there.

    PY=/root/nemo-venv/bin/python
    $PY python/bench/nemo_peer.py shape parakeet-tdt-0.6b-v2 /root/nemo-work/parakeet.nemo   # random weights
    $PY python/bench/nemo_peer.py run /root/nemo-work/parakeet.nemo AUDIO.wav --threads 1,2 --recipes int8,int4,exp1,exp5

`shape` builds a model with NeMo's own classes at a public shape (NeMo's default initialisation: random weights,
a SentencePiece BPE tokenizer of the shape's vocabulary trained on the system word list) and saves it.
`run` prints a markdown table. Each measurement is a separate process (its peak RSS is its own):
- ORT: `model.export()` writes encoder-*.onnx and decoder_joint-*.onnx (NeMo's RNN-T export); features are
  NeMo's preprocessor as the numpy reference computes it (inside the timed region; the measured process imports
  neither torch nor NeMo); the encoder is one session run; the search is NeMo's greedy
  label loop (RNN-T or TDT, max_symbols as configured) over decoder_joint, one session run per step (the fused
  graph recomputes the predictor at every step: that is how NeMo exports it). Load = session creation.
- usm-infer: `usm-pack import` (f32), `usm-pack quantize --recipe R`, `usm-bench latency --model M --audio A
  --runs 3 --json` (its offline total covers features, encoder and search; load = `Recognizer(path:)`).
Offline seconds are the median of 3 runs after one warm-up run (ORT) or as usm-bench reports them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "scripts"))

SHAPES = {
    # FastConformer XL + TDT (model cards of nvidia/parakeet-tdt-0.6b-v2); see Sources/USMModel/NeMo/NeMoShapes.swift
    "parakeet-tdt-0.6b-v2": dict(features=128, d_model=1024, n_layers=24, n_heads=8, channels=256, kernel=9,
                                 pred_hidden=640, pred_layers=2, joint_hidden=640, vocab=1024, durations=[0, 1, 2, 3, 4]),
}


def sp_tokenizer(work, vocab):
    d = os.path.join(work, f"tok{vocab}")
    if not os.path.exists(os.path.join(d, "tokenizer.model")):
        import sentencepiece as spm
        os.makedirs(d, exist_ok=True)
        spm.SentencePieceTrainer.train(input="/usr/share/dict/words", model_prefix=os.path.join(d, "tokenizer"),
                                       vocab_size=vocab, model_type="bpe", character_coverage=1.0, bos_id=-1,
                                       eos_id=-1, unk_id=0, pad_id=-1, num_threads=1, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            for i in range(1, sp.get_piece_size()):
                f.write(sp.id_to_piece(i) + "\n")
    return d


def make_shape(name, out):
    import torch
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    import nemo_fixtures as nf
    s = SHAPES[name]
    torch.manual_seed(0)
    tok = sp_tokenizer(os.path.dirname(os.path.abspath(out)), s["vocab"])
    nf.tokenizer_dir = lambda: tok  # the fixtures' tokenizer is trained on the training text; this one on words
    cfg = nf.model_config("fastconformer-tdt")
    cfg["preprocessor"] = nf.preprocessor(s["features"])
    cfg["encoder"] = nf.encoder(s["features"], d_model=s["d_model"], n_layers=s["n_layers"], n_heads=s["n_heads"],
                                channels=s["channels"], kernel=s["kernel"])
    cfg["model_defaults"] = {"enc_hidden": s["d_model"], "pred_hidden": s["pred_hidden"],
                             "joint_hidden": s["joint_hidden"], "tdt_durations": s["durations"]}
    cfg["decoder"]["prednet"].update(pred_hidden=s["pred_hidden"], pred_rnn_layers=s["pred_layers"])
    cfg["joint"]["jointnet"]["joint_hidden"] = s["joint_hidden"]
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg), trainer=None)
    model.eval()
    model.save_to(out)
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters")


def read_audio(path):
    import numpy as np
    import wave
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / np.float32(32768.0)


def export(model_path, work):
    """NeMo's ONNX export of the model (encoder + decoder_joint), plus ORT dynamic int8 copies."""
    done = os.path.join(work, "exported.json")
    if os.path.exists(done):
        return json.load(open(done))
    import torch
    from nemo.collections.asr.models import ASRModel
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = ASRModel.restore_from(model_path, map_location="cpu")
    model.eval()
    model.export(os.path.join(work, "model.onnx"))
    files = sorted(f for f in os.listdir(work) if f.endswith("-model.onnx"))
    enc = os.path.join(work, next(f for f in files if f.startswith("encoder")))
    dec = os.path.join(work, next(f for f in files if f.startswith("decoder_joint")))
    out = {"f32": [enc, dec]}
    q = []
    for p in (enc, dec):
        qp = p.replace(".onnx", ".int8.onnx")
        quantize_dynamic(p, qp, weight_type=QuantType.QInt8)
        q.append(qp)
    out["int8"] = q
    cfg = model.cfg
    durations = list(cfg.decoding.get("durations", []) or []) if cfg.decoding.get("model_type") == "tdt" else []
    out["meta"] = {"blank": model.decoder.blank_idx, "durations": durations,
                   "max_symbols": int(cfg.decoding.greedy.get("max_symbols", 10)),
                   "layers": int(cfg.decoder.prednet.pred_rnn_layers), "hidden": int(cfg.decoder.prednet.pred_hidden)}
    json.dump(out, open(done, "w"))
    return out


def features_model(work):
    """The NeMo preprocessor as the numpy reference computes it (usm_ref.nemo.reference, equal to NeMo's features
    within 3.3e-4), from the imported container's two preprocessor tensors: no torch in the measured process."""
    import numpy as np
    from usm_ref.nemo.reference import NemoModel
    z = np.load(os.path.join(work, "preprocessor.npz"), allow_pickle=False)
    arch = json.load(open(os.path.join(work, "preprocessor.json")))
    return NemoModel({"architecture": arch}, {"preprocessor.window": z["window"], "preprocessor.filterbank": z["filterbank"]})


def ort_child(model_path, variant, threads, audio, work):
    """One ORT measurement in this process: load (session creation), then 1 warm-up + 3 timed offline runs."""
    import numpy as np
    import onnxruntime as ort
    ex = json.load(open(os.path.join(work, "exported.json")))
    meta = ex["meta"]
    pre = features_model(work)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    t0 = time.perf_counter()
    enc = ort.InferenceSession(ex[variant][0], so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(ex[variant][1], so, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t0
    x = read_audio(audio)
    blank, durations, max_symbols = meta["blank"], meta["durations"], meta["max_symbols"]
    L, H = meta["layers"], meta["hidden"]
    enc_in = [i.name for i in enc.get_inputs()]
    dec_in = [i.name for i in dec.get_inputs()]

    def once():
        f = pre.features(x)  # [frames, mels]
        e, elen = enc.run(None, {enc_in[0]: np.ascontiguousarray(f.T[None]), enc_in[1]: np.array([f.shape[0]], np.int64)})[:2]
        T = int(elen[0])
        h = np.zeros((L, 1, H), np.float32)
        c = np.zeros((L, 1, H), np.float32)
        last = blank
        t, last_t, count, tokens = 0, -1, 0, []
        while t < T:
            feed = {dec_in[0]: e[:, :, t:t + 1], dec_in[1]: np.array([[last]], np.int32),
                    dec_in[2]: np.array([1], np.int32), dec_in[3]: h, dec_in[4]: c}
            outs = dec.run(None, feed)
            logits = outs[0].reshape(-1)
            k = int(np.argmax(logits[:blank + 1]))
            d = durations[int(np.argmax(logits[blank + 1:]))] if durations else (1 if k == blank else 0)
            if k == blank:
                t += max(d, 1)
                continue
            tokens.append(k)
            last, h, c = k, outs[2], outs[3]
            count = count + 1 if t == last_t else 1
            last_t = t
            t += d
            if d == 0 and count >= max_symbols:
                t += 1
        return tokens, T

    once()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        tokens, T = once()
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    print(json.dumps({"label": f"ort-{variant}", "load": load, "offline": sec, "rtf": sec / (x.size / 16000),
                      "rss_mb": peak_rss_mb(),
                      "bytes": onnx_bytes(work, variant), "symbols_per_frame": len(tokens) / max(T, 1)}))


def peak_rss_mb():
    """This address space's peak (VmHWM): getrusage's maximum survives fork + exec, so a child of a large parent
    would report the parent's size."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def onnx_bytes(work, variant):
    """Bytes of a variant's graphs with their external weight files (NeMo's export of a model over 2 GB writes its
    weights beside the .onnx files; the int8 copies hold theirs)."""
    own = (".usm", ".npz", ".json")
    names = [f for f in os.listdir(work) if not f.endswith(own)]
    if variant == "int8":
        return sum(os.path.getsize(os.path.join(work, f)) for f in names if f.endswith(".int8.onnx"))
    return sum(os.path.getsize(os.path.join(work, f)) for f in names if not f.endswith(".int8.onnx"))


def usm_child(container, threads, audio):
    bench = os.path.join(ROOT, ".build", "release", "usm-bench")
    r = subprocess.run([bench, "latency", "--model", container, "--audio", audio, "--threads", str(threads),
                        "--runs", "3", "--json"], capture_output=True, text=True, check=True)
    m = json.loads(r.stdout)[0]
    return {"label": os.path.basename(container).replace(".usm", ""), "load": m["loadSeconds"],
            "offline": m["offlineSeconds"], "rtf": m["rtf"], "rss_mb": m["peakRSS"] / 1e6, "bytes": m["fileBytes"],
            "symbols_per_frame": m.get("symbolsPerFrame", 0)}


def run(model_path, audio, threads, recipes, work_root):
    work = os.path.join(work_root, os.path.splitext(os.path.basename(model_path))[0] + "-peer")
    os.makedirs(work, exist_ok=True)
    export(model_path, work)
    pack = os.path.join(ROOT, ".build", "release", "usm-pack")
    f32 = os.path.join(work, "usm-f32.usm")
    if not os.path.exists(f32):
        subprocess.run([pack, "import", model_path, f32], check=True)
    if not os.path.exists(os.path.join(work, "preprocessor.npz")):
        import numpy as np
        from usm_ref import container
        meta, packed = container.read(f32)
        np.savez(os.path.join(work, "preprocessor.npz"), window=packed["preprocessor.window"].dequantize(),
                 filterbank=packed["preprocessor.filterbank"].dequantize())
        json.dump(meta["architecture"], open(os.path.join(work, "preprocessor.json"), "w"))
    containers = [f32]
    for r in recipes:
        p = os.path.join(work, f"usm-{r}.usm")
        if not os.path.exists(p):
            subprocess.run([pack, "quantize", f32, p, "--recipe", r], check=True, stdout=subprocess.DEVNULL)
        containers.append(p)
    rows = []
    for t in threads:
        for variant in ("f32", "int8"):
            r = subprocess.run([sys.executable, __file__, "_ort", model_path, variant, str(t), audio, work],
                               capture_output=True, text=True, check=True)
            rows.append((t, json.loads(r.stdout.strip().splitlines()[-1])))
        for c in containers:
            rows.append((t, usm_child(c, t, audio)))
    print(f"\n{os.path.basename(model_path)}, {audio}\n")
    print("| threads | runtime | file MB | load s | offline s | RTF | RTF vs ort-int8 | peak RSS MB | RSS / file | symbols / frame |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in threads:
        base = next(m for tt, m in rows if tt == t and m["label"] == "ort-int8")
        for tt, m in rows:
            if tt != t:
                continue
            print(f"| {t} | {m['label']} | {m['bytes'] / 1e6:.1f} | {m['load']:.3f} | {m['offline']:.3f} | {m['rtf']:.4f} "
                  f"| {base['rtf'] / m['rtf']:.2f}x | {m['rss_mb']:.0f} | {m['rss_mb'] / (m['bytes'] / 1e6):.2f} "
                  f"| {m['symbols_per_frame']:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("shape")
    s.add_argument("name", choices=sorted(SHAPES))
    s.add_argument("out")
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("audio")
    r.add_argument("--threads", default="1,2")
    r.add_argument("--recipes", default="int8,int4,exp1,exp5")
    r.add_argument("--work", default="/root/nemo-work", help="where exports and containers go (outside git)")
    c = sub.add_parser("_ort")
    for a in ("model", "variant", "threads", "audio", "work"):
        c.add_argument(a)
    a = ap.parse_args()
    if a.cmd == "shape":
        make_shape(a.name, a.out)
    elif a.cmd == "run":
        run(a.model, a.audio, [int(v) for v in a.threads.split(",")], [v for v in a.recipes.split(",") if v], a.work)
    else:
        ort_child(a.model, a.variant, int(a.threads), a.audio, a.work)


if __name__ == "__main__":
    main()
