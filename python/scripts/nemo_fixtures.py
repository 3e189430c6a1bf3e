"""Golden fixtures made by NeMo itself (issue 24): tiny NeMo transducers built from NeMo's own classes, trained
briefly on the speechocean762 train half, saved as .nemo, and their outputs on a few real clips.

Needs the NeMo environment (python/scripts/nemo_env.sh -> /root/nemo-venv). Run from the repo root:

    nice -n 19 /root/nemo-venv/bin/python python/scripts/nemo_fixtures.py train fastconformer-rnnt
    ...                                                                   train fastconformer-tdt
    ...                                                                   train conformer-rnnt
    ...                                                                   train fastconformer-hybrid
    nice -n 19 /root/nemo-venv/bin/python python/scripts/nemo_fixtures.py golden      # all models

Training budget per run: NEMO_CPU_MINUTES (default 8) of process CPU time, NEMO_MINUTES (default 20) of wall time,
NEMO_STEPS (default 400) steps; NEMO_RESUME=1 continues from the saved Tests/Fixtures/NeMo/<name>.nemo (the checked-in
RNN-T fixtures were trained in two such runs). The loss functions here (rnnt_loss, tdt_loss) replace NeMo's CPU
losses, which were too slow (warprnnt_numba) or CUDA-only (TDT) in NeMo 3.0.0; see docs/nemo-import.md.

Outputs (Tests/Fixtures/NeMo/): <name>.nemo, <name>.golden.usm (container, f32 tensors, see docs/nemo-import.md),
clip-*.wav (16 kHz mono PCM16; the goldens name them in their metadata).

Data: tokenizer (sentencepiece unigram, 128 pieces) trained on /root/usm-data/text/train_text.txt (training text
only, docs/data/PROVENANCE.md); acoustic training on /root/usm-data/so762-train.tsv (speechocean762 TRAIN half).
Golden clips: Models/sample.wav (in the repo) and two speechocean762 TEST-half clips (evaluation use only: they are
never trained on).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "NeMo")
WORK = os.environ.get("NEMO_WORK", "/root/nemo-work")
DATA = os.environ.get("USM_DATA", "/root/usm-data")
sys.path.insert(0, os.path.join(ROOT, "python"))

# Golden clips: (fixture name, source). The so762 ids are from so762-test.tsv (TEST half: evaluation only).
CLIPS = [("clip-sample.wav", os.path.join(ROOT, "Models", "sample.wav")),
         ("clip-so762-000030024.wav", f"{DATA}/so762/WAVE/SPEAKER0003/000030024.WAV"),
         ("clip-so762-000030040.wav", f"{DATA}/so762/WAVE/SPEAKER0003/000030040.WAV")]

VOCAB = 128


def tokenizer_dir():
    d = os.path.join(WORK, "tok")
    if not os.path.exists(os.path.join(d, "tokenizer.model")):
        import sentencepiece as spm
        os.makedirs(d, exist_ok=True)
        spm.SentencePieceTrainer.train(
            input=f"{DATA}/text/train_text.txt", model_prefix=os.path.join(d, "tokenizer"), vocab_size=VOCAB,
            model_type="unigram", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
            normalization_rule_name="identity", input_sentence_size=200000, shuffle_input_sentence=True,
            num_threads=1, minloglevel=2, seed_sentencepiece_size=100000)
        import sentencepiece as spm  # noqa: F811
        sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            for i in range(1, sp.get_piece_size()):
                f.write(sp.id_to_piece(i) + "\n")
    return d


def preprocessor(features=80, pad_to=0, **kw):
    p = {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "sample_rate": 16000,
         "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01, "window": "hann",
         "features": features, "n_fft": 512, "log": True, "frame_splicing": 1, "dither": 1e-5, "pad_to": pad_to,
         "pad_value": 0.0}
    p.update(kw)
    return p


def encoder(features, d_model=64, n_layers=2, n_heads=4, subsampling="dw_striding", factor=8, channels=32,
            kernel=9, conv_norm="batch_norm", xscaling=True, untie=True, att_context=(-1, -1)):
    return {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": features, "feat_out": -1,
            "n_layers": n_layers, "d_model": d_model, "subsampling": subsampling, "subsampling_factor": factor,
            "subsampling_conv_channels": channels, "causal_downsampling": False, "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos", "n_heads": n_heads, "att_context_size": list(att_context),
            "att_context_style": "regular", "xscaling": xscaling, "untie_biases": untie, "pos_emb_max_len": 5000,
            "conv_kernel_size": kernel, "conv_norm_type": conv_norm, "conv_context_size": None, "dropout": 0.1,
            "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1,
            "stochastic_depth_drop_prob": 0.0, "stochastic_depth_mode": "linear",
            "stochastic_depth_start_layer": 1}


def model_config(name):
    tdt = name.endswith("tdt")
    if name == "fastconformer-rnnt":
        pre, enc = preprocessor(80), encoder(80)
    elif name == "fastconformer-tdt":
        # 128 mels like parakeet-tdt; limited attention context to exercise the mask
        pre, enc = preprocessor(128), encoder(128, att_context=(24, 6))
    elif name == "conformer-rnnt":
        pre = preprocessor(80, pad_to=16)
        enc = encoder(80, subsampling="striding", factor=4, channels=32, kernel=15, conv_norm="layer_norm",
                      xscaling=False, untie=True)
    elif name == "fastconformer-hybrid":
        pre, enc = preprocessor(80, log_zero_guard_type="clamp", log_zero_guard_value=1e-5), encoder(80)
    else:
        raise SystemExit(f"unknown model {name}")
    d = enc["d_model"]
    cfg = {
        "sample_rate": 16000,
        "tokenizer": {"dir": tokenizer_dir(), "type": "bpe"},
        "model_defaults": {"enc_hidden": d, "pred_hidden": 64, "joint_hidden": 64},
        "preprocessor": pre,
        "spec_augment": None,
        "encoder": enc,
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": 64, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.1}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
                  "preserve_memory": False, "fuse_loss_wer": False, "fused_batch_size": 4,
                  "jointnet": {"joint_hidden": 64, "activation": "relu" if name != "conformer-rnnt" else "tanh",
                               "dropout": 0.1}},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}},
        "loss": {"loss_name": "default"},
        "optim": {"name": "adamw", "lr": 2e-3},
    }
    if tdt:
        durations = [0, 1, 2, 3, 4]
        cfg["model_defaults"]["tdt_durations"] = durations
        cfg["joint"]["num_extra_outputs"] = len(durations)
        cfg["decoding"] = {"strategy": "greedy_batch", "model_type": "tdt", "durations": durations,
                           "greedy": {"max_symbols": 10}}
        # the config a real TDT model has; NeMo 3.0.0's numba TDT loss is CUDA-only ("TDT is not yet implemented
        # for non CUDA computation") and its tdt_pytorch loss calls .cuda(), so training uses tdt_loss() below
        cfg["loss"] = {"loss_name": "tdt", "tdt_kwargs": {"fastemit_lambda": 0.0, "clamp": -1.0,
                                                           "durations": durations, "sigma": 0.02, "omega": 0.0}}
    if name.endswith("hybrid"):
        cfg["aux_ctc"] = {"ctc_loss_weight": 0.3, "use_cer": False, "ctc_reduction": "mean_batch",
                          "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": None,
                                      "num_classes": -1, "vocabulary": []},
                          "decoding": {"strategy": "greedy"}}
    return cfg


def tdt_loss(acts, labels, act_lens, label_lens, blank, durations, sigma=0.02):
    """TDT loss (Xu et al. 2023, eq. 7; the math of NeMo's TDTLossPytorch, vectorized over the batch and over u
    for the duration>0 arcs) on CPU. acts [B, T, U+1, V+1+D] (any log-normalization: each part is re-normalized)."""
    import torch
    nd = len(durations)
    lab = torch.log_softmax(acts[..., :-nd], -1) - sigma
    dur = torch.log_softmax(acts[..., -nd:], -1)
    B, T, U1, _ = lab.shape
    neg = torch.full((B,), -1000.0)
    idx = labels.clamp(min=0)
    # emit[b, t, u] = log p(label u+1 | t, u), for u < U1-1
    emit = torch.gather(lab[:, :, :-1, :], 3, idx[:, None, :U1 - 1, None].expand(B, T, U1 - 1, 1))[..., 0]
    blank_lp = lab[..., blank]
    alpha = []  # alpha[t] : [B, U1]
    for t in range(T):
        acc = [neg] * U1 if t else [torch.zeros(B)] + [neg] * (U1 - 1)
        acc = torch.stack(acc, 1)
        for n, l in enumerate(durations):
            if l > 0 and t - l >= 0:
                a = alpha[t - l]
                acc = torch.logaddexp(acc, a + blank_lp[:, t - l] + dur[:, t - l, :, n])
                nb = a[:, :-1] + emit[:, t - l] + dur[:, t - l, :-1, n]
                acc = torch.cat([acc[:, :1], torch.logaddexp(acc[:, 1:], nb)], 1)
        if 0 in durations:
            n0 = durations.index(0)
            cols = [acc[:, 0]]
            for u in range(1, U1):
                cols.append(torch.logaddexp(acc[:, u], cols[-1] + emit[:, t, u - 1] + dur[:, t, u - 1, n0]))
            acc = torch.stack(cols, 1)
        alpha.append(acc)
    alpha = torch.stack(alpha, 1)  # [B, T, U1]
    out = []
    for b in range(B):
        Tb, Ub = int(act_lens[b]), int(label_lens[b])
        tt = torch.tensor(-1000.0)
        for n, l in enumerate(durations):
            if l > 0 and Tb - l >= 0:
                tt = torch.logaddexp(tt, alpha[b, Tb - l, Ub] + blank_lp[b, Tb - l, Ub] + dur[b, Tb - l, Ub, n])
        out.append(-tt)
    return torch.stack(out).mean()


def rnnt_loss(acts, labels, act_lens, label_lens, blank):
    """RNN-T loss (Graves 2012), vectorized over the batch, on CPU: NeMo's default CPU loss (warprnnt_numba) ran
    at > 2 CPU s per step here, so training computes the same quantity with this. acts [B, T, U+1, V+1]."""
    import torch
    lp = torch.log_softmax(acts, -1)
    B, T, U1, _ = lp.shape
    idx = labels.clamp(min=0)
    emit = torch.gather(lp[:, :, :-1, :], 3, idx[:, None, :U1 - 1, None].expand(B, T, U1 - 1, 1))[..., 0]
    blank_lp = lp[..., blank]
    alpha = []
    for t in range(T):
        if t == 0:
            first = torch.zeros(B)
            base = None
        else:
            base = alpha[t - 1] + blank_lp[:, t - 1]
            first = base[:, 0]
        cols = [first]
        for u in range(1, U1):
            e = cols[-1] + emit[:, t, u - 1]
            cols.append(e if base is None else torch.logaddexp(base[:, u], e))
        alpha.append(torch.stack(cols, 1))
    alpha = torch.stack(alpha, 1)
    b = torch.arange(B)
    tl, ul = act_lens.long() - 1, label_lens.long()
    return -(alpha[b, tl, ul] + blank_lp[b, tl, ul]).mean()


def build(name):
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel, EncDecRNNTBPEModel
    cfg = OmegaConf.create(model_config(name))
    cls = EncDecHybridRNNTCTCBPEModel if name.endswith("hybrid") else EncDecRNNTBPEModel
    return cls(cfg=cfg, trainer=None)


def read_wav(path):
    """16-bit PCM mono -> float32 in [-1, 1) exactly as soundfile/NeMo read it (int16 / 32768)."""
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return x.astype(np.float32) / np.float32(32768.0), rate


def load_train(limit_seconds=6.0):
    rows = []
    with open(f"{DATA}/so762-train.tsv") as f:
        for line in f:
            uid, path, secs, text = line.rstrip("\n").split("\t")
            if float(secs) <= limit_seconds:
                rows.append((path, text))
    return rows


def train(name, steps=None, minutes=None, batch=8, seed=0):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    random.seed(seed)
    steps = steps or int(os.environ.get("NEMO_STEPS", "400"))
    # budget: CPU seconds of this process (the machine is shared), and a wall-clock cap
    cpu_minutes = float(os.environ.get("NEMO_CPU_MINUTES", "8"))
    minutes = minutes or float(os.environ.get("NEMO_MINUTES", "20"))
    resume = os.path.join(OUT, f"{name}.nemo")
    if os.environ.get("NEMO_RESUME") and os.path.exists(resume):  # continue training a saved fixture
        from nemo.collections.asr.models import ASRModel
        model = ASRModel.restore_from(resume, map_location="cpu")
        print(f"resuming from {resume}", flush=True)
    else:
        model = build(name)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{name}: {nparams} parameters", flush=True)
    rows = load_train()
    audio_cache = {}
    tok = model.tokenizer
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    warm = 50
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.1, 1 - s / steps))
    hybrid = name.endswith("hybrid")
    model.train()
    t0 = time.time()
    # length-bucketed batches
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][1]))
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    step = 0
    c0 = time.process_time()

    def budget_left():
        return time.time() - t0 < minutes * 60 and time.process_time() - c0 < cpu_minutes * 60

    while step < steps and budget_left():
        random.shuffle(batches)
        for b in batches:
            if step >= steps or not budget_left():
                break
            sig, tgts = [], []
            for i in b:
                path, text = rows[i]
                if path not in audio_cache:
                    audio_cache[path] = read_wav(path)[0]
                sig.append(audio_cache[path])
                tgts.append(tok.text_to_ids(text))
            T = max(len(s) for s in sig)
            U = max(len(t) for t in tgts)
            x = torch.zeros(len(b), T)
            y = torch.zeros(len(b), U, dtype=torch.long)
            for k, (s, t) in enumerate(zip(sig, tgts)):
                x[k, :len(s)] = torch.from_numpy(s)
                y[k, :len(t)] = torch.tensor(t)
            xl = torch.tensor([len(s) for s in sig])
            yl = torch.tensor([len(t) for t in tgts])
            enc, enc_len = model.forward(input_signal=x, input_signal_length=xl)
            dec, _, _ = model.decoder(targets=y, target_length=yl)
            joint = model.joint(encoder_outputs=enc, decoder_outputs=dec)
            if name.endswith("tdt"):
                loss = tdt_loss(joint, y, enc_len, yl, model.decoder.blank_idx, list(model.cfg.model_defaults.tdt_durations))
            else:
                loss = rnnt_loss(joint, y, enc_len, yl, model.decoder.blank_idx)
            if hybrid:
                lp = model.ctc_decoder(encoder_output=enc)
                ctc = model.ctc_loss(log_probs=lp, targets=y, input_lengths=enc_len, target_lengths=yl)
                loss = 0.7 * loss + 0.3 * ctc
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 25 == 0:
                print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f}s wall "
                      f"{time.process_time() - c0:.0f}s cpu", flush=True)
            step += 1
    model.eval()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.nemo")
    model.save_to(path)
    print(f"saved {path} ({os.path.getsize(path)} bytes) after {step} steps, {time.time() - t0:.0f}s wall, "
          f"{time.process_time() - c0:.0f}s cpu", flush=True)


def clips():
    os.makedirs(OUT, exist_ok=True)
    out = []
    for fname, src in CLIPS:
        dst = os.path.join(OUT, fname)
        if not os.path.exists(dst):
            shutil.copyfile(src, dst)
        out.append((fname, read_wav(dst)[0]))
    return out


def greedy_hypothesis(model, out, out_len):
    """NeMo's greedy search on [B, D, T] encoder output: the first hypothesis and its token ids."""
    hyp = model.decoding.rnnt_decoder_predictions_tensor(encoder_output=out, encoded_lengths=out_len,
                                                         return_hypotheses=True)
    hyp = hyp[0] if isinstance(hyp, list) else hyp[0][0]
    if isinstance(hyp, (list, tuple)):
        hyp = hyp[0]
    y = hyp.y_sequence
    return hyp, [int(t) for t in (y.tolist() if hasattr(y, "tolist") else y)]


def frame_loop_tokens(model, out, out_len):
    import copy
    from omegaconf import open_dict
    cfg = copy.deepcopy(model.cfg.decoding)
    with open_dict(cfg):
        cfg.strategy = "greedy"
    saved = model.cfg.decoding
    model.change_decoding_strategy(cfg, verbose=False)
    try:
        return greedy_hypothesis(model, out, out_len)[1]
    finally:
        model.change_decoding_strategy(saved, verbose=False)


def golden(name):
    import torch
    from nemo.collections.asr.models import ASRModel
    from usm_ref import container, quant
    torch.set_num_threads(1)
    model = ASRModel.restore_from(os.path.join(OUT, f"{name}.nemo"), map_location="cpu")
    model.eval()
    model.preprocessor.featurizer.dither = 0.0
    if name.endswith("tdt"):  # record the duration of every token (changes nothing else in the search)
        import copy
        from omegaconf import open_dict
        dcfg = copy.deepcopy(model.cfg.decoding)
        with open_dict(dcfg):
            dcfg.tdt_include_token_duration = True
        model.change_decoding_strategy(dcfg, verbose=False)
    model.preprocessor.featurizer.pad_to = model.cfg.preprocessor.get("pad_to", 16)
    tensors, clip_meta = {}, []
    f32 = lambda a: quant.quantize(np.ascontiguousarray(np.asarray(a, np.float32)), "f32")  # noqa: E731
    with torch.no_grad():
        for ci, (fname, samples) in enumerate(clips()):
            x = torch.from_numpy(samples)[None]
            xl = torch.tensor([samples.size])
            feats, flen = model.preprocessor(input_signal=x, length=xl)
            n = int(flen[0])
            enc = model.encoder
            pre, pre_len = enc.pre_encode(x=feats.transpose(1, 2), lengths=flen)
            out, out_len = enc(audio_signal=feats, length=flen)
            tl = int(out_len[0])
            hyp, toks = greedy_hypothesis(model, out, out_len)
            ts = hyp.timestamp
            ts = [int(t) for t in (ts.tolist() if torch.is_tensor(ts) else ts)] if not isinstance(ts, dict) else []
            text = model.tokenizer.ids_to_text(toks)
            p = f"clip{ci}."
            tensors[p + "features"] = f32(feats[0, :, :n].T.numpy())          # [frames, mels], valid frames only
            tensors[p + "pre_encode"] = f32(pre[0, :int(pre_len[0])].numpy())  # [T', d_model], before xscale
            tensors[p + "encoder"] = f32(out[0, :, :tl].T.numpy())            # [T', d_model]
            tensors[p + "tokens"] = f32(np.array(toks if toks else [-1], np.float32))
            tensors[p + "token_frames"] = f32(np.array(ts if ts else [-1], np.float32))
            td = getattr(hyp, "token_duration", None)
            td = [int(v) for v in (td.tolist() if torch.is_tensor(td) else td)] if td is not None else []
            if name.endswith("tdt"):
                tensors[p + "token_durations"] = f32(np.array(td if td else [-1], np.float32))
            entry = {"wav": fname, "samples": int(samples.size), "features_length": n,
                     "features_frames_in_tensor": int(feats.shape[-1]), "encoder_length": tl,
                     "tokens": toks, "token_frames": ts, "text": text}
            if name.endswith("tdt"):
                entry["token_durations"] = td
            if name.endswith("hybrid"):
                lp = model.ctc_decoder(encoder_output=out)[0, :tl]
                ids = lp.argmax(-1).tolist()
                blank = lp.shape[-1] - 1
                ctc, prev = [], None
                for i in ids:
                    if i != prev and i != blank:
                        ctc.append(i)
                    prev = i
                tensors[p + "ctc_logprobs"] = f32(lp.numpy())
                tensors[p + "ctc_tokens"] = f32(np.array(ctc if ctc else [-1], np.float32))
                entry["ctc_tokens"] = ctc
                entry["ctc_text"] = model.tokenizer.ids_to_text(ctc)
            # the first joint output (frame 0, start state) as a finer-grained check
            g, _ = model.decoder.predict(None, None, add_sos=False, batch_size=1)
            j = model.joint.joint_after_projection(model.joint.project_encoder(out.transpose(1, 2)[:, :1]),
                                                   model.joint.project_prednet(g))
            tensors[p + "joint0"] = f32(j[0, 0, 0].numpy())
            # the per-frame (non-batched) greedy must agree with the default label-looping one
            entry["frame_loop_greedy_equal"] = frame_loop_tokens(model, out, out_len) == toks
            clip_meta.append(entry)
            print(name, fname, entry["text"], "|", toks[:20], flush=True)
    # decoding probe: briefly trained models often emit only blanks on real audio, so NeMo's greedy search is also
    # run on a seeded random "encoder output" scaled until tokens come out (exercises the predictor, the joint,
    # TDT durations and max_symbols against NeMo's own loop)
    probe = None
    with torch.no_grad():
        rng = np.random.default_rng(24)
        base = rng.standard_normal((1, 48, model.cfg.encoder.d_model)).astype(np.float32)
        for scale in (1, 2, 3, 5, 8, 12, 20, 30, 50):
            e = torch.from_numpy(base * scale).transpose(1, 2)
            el = torch.tensor([48])
            hyp, toks = greedy_hypothesis(model, e, el)
            if len(toks) >= 12 or scale == 50:
                ts = hyp.timestamp
                probe = {"scale": scale, "tokens": toks,
                         "token_frames": [int(t) for t in (ts.tolist() if torch.is_tensor(ts) else ts)],
                         "frame_loop_greedy_equal": frame_loop_tokens(model, e, el) == toks}
                tensors["probe.encoder"] = f32(base[0] * scale)
                tensors["probe.tokens"] = f32(np.array(toks if toks else [-1], np.float32))
                tensors["probe.token_frames"] = f32(np.array(probe["token_frames"] or [-1], np.float32))
                if name.endswith("tdt"):
                    td = hyp.token_duration
                    probe["token_durations"] = [int(v) for v in (td.tolist() if torch.is_tensor(td) else td)]
                    tensors["probe.token_durations"] = f32(np.array(probe["token_durations"] or [-1], np.float32))
                if name.endswith("hybrid"):
                    lp = model.ctc_decoder(encoder_output=e)[0]
                    blank = lp.shape[-1] - 1
                    ctc, prev = [], None
                    for i in lp.argmax(-1).tolist():
                        if i != prev and i != blank:
                            ctc.append(i)
                        prev = i
                    probe["ctc_tokens"] = ctc
                    tensors["probe.ctc_tokens"] = f32(np.array(ctc if ctc else [-1], np.float32))
                # NeMo's default beam search of the decoder's kind (BeamRNNTInfer, or BeamTDTInfer for TDT;
                # search_type "default", score_norm) on the same probe, best hypothesis; TDT timestamps are the
                # frame each token's duration lands on
                for width in (2, 4):
                    if name.endswith("tdt"):
                        from nemo.collections.asr.parts.submodules.tdt_beam_decoding import BeamTDTInfer
                        beam = BeamTDTInfer(model.decoder, model.joint, durations=list(model.cfg.model_defaults.tdt_durations),
                                            beam_size=width, search_type="default", score_norm=True,
                                            return_best_hypothesis=True)
                    else:
                        from nemo.collections.asr.parts.submodules.rnnt_beam_decoding import BeamRNNTInfer
                        beam = BeamRNNTInfer(model.decoder, model.joint, beam_size=width, search_type="default",
                                             score_norm=True, return_best_hypothesis=True)
                    best = beam(encoder_output=e, encoded_lengths=el)[0][0]
                    ys = best.y_sequence.tolist() if torch.is_tensor(best.y_sequence) else list(best.y_sequence)
                    blank_id = model.decoder.blank_idx
                    btoks = [int(t) for t in ys if int(t) != blank_id]
                    bts = best.timestamp.tolist() if torch.is_tensor(best.timestamp) else list(best.timestamp)
                    bframes = [int(t) for t in bts if int(t) >= 0]
                    probe[f"beam{width}"] = {"tokens": btoks, "token_frames": bframes, "score": float(best.score)}
                    tensors[f"probe.beam{width}.tokens"] = f32(np.array(btoks if btoks else [-1], np.float32))
                    tensors[f"probe.beam{width}.token_frames"] = f32(np.array(bframes or [-1], np.float32))
                break
    print(name, "probe", probe, flush=True)
    import nemo
    meta = {"architecture": {}, "golden": {"probe": probe,
        "model": f"{name}.nemo", "clips": clip_meta, "nemo_version": nemo.__version__,
        "torch_version": torch.__version__,
        "decoding": json.loads(json.dumps(dict(model.cfg.decoding), default=str)),
        "notes": "features/pre_encode/encoder are the valid frames only ([frames, dim]); tokens -1 = none; "
                 "joint0 = NeMo's joint output at encoder frame 0 with the predictor start state (zero input, "
                 "zero LSTM state); on CPU RNNTJoint(log_softmax=None) returns log_softmax over all outputs "
                 "(vocab + blank + TDT durations together)."},
        "provenance": {"tool": "python/scripts/nemo_fixtures.py", "created": "fixed",
                       "source": f"NeMo {nemo.__version__} eval mode, dither 0, batch 1"}}
    path = os.path.join(OUT, f"{name}.golden.usm")
    container.write(path, tensors, meta, level=19)
    print("wrote", path, os.path.getsize(path), flush=True)


MODELS = ["fastconformer-rnnt", "fastconformer-tdt", "conformer-rnnt", "fastconformer-hybrid"]

if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "golden"
    names = sys.argv[2:] or MODELS
    for n in names:
        if cmd == "train":
            train(n)
        elif cmd == "golden":
            golden(n)
        elif cmd == "config":
            print(json.dumps(model_config(n), indent=1))
        else:
            raise SystemExit(f"unknown command {cmd}")
