"""Float RNN-T training of the Conformer transducer on precomputed features.

python -m usm_ref.train --data $USM_DATA --exp $USM_DATA/ckpt/exp0        (resumes from <exp>/latest.pt if present)

Batches are bucketed by length (max padded frames per batch), SpecAugment on normalised features, AdamW with
linear warmup + inverse-sqrt decay, gradient clipping, checkpoints every --ckpt-every steps, greedy-decode WER on
a fixed dev subset every --eval-every steps. New feature shards are picked up at each epoch start.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torchaudio.functional as AF

from . import qat
from .config import ModelConfig, named_config
from .data import FeatureStore, data_root
from .decode import greedy_batch, wer
from .model import ConformerRNNT
from .tokenizer import Tokenizer


def make_batches(frames: list[int], max_frames: int, max_batch: int, rng: random.Random) -> list[list[int]]:
    # sort by length with a little noise so batches differ between epochs
    order = sorted(range(len(frames)), key=lambda i: frames[i] * rng.uniform(0.95, 1.05))
    batches, cur, cur_max = [], [], 0
    for i in order:
        m = max(cur_max, frames[i])
        if cur and (m * (len(cur) + 1) > max_frames or len(cur) >= max_batch):
            batches.append(cur)
            cur, m = [], frames[i]
        cur.append(i)
        cur_max = m
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, rng: np.random.Generator, n_freq=2, max_f=15,
                 time_ratio=0.04, max_t=40, max_masks=6):
    """In place on normalised features [B, T, F]: masked values set to 0 (= the training mean)."""
    B, T, Fb = x.shape
    for b in range(B):
        L = int(lengths[b])
        for _ in range(n_freq):
            w = int(rng.integers(0, max_f + 1))
            f0 = int(rng.integers(0, Fb - w + 1))
            x[b, :, f0:f0 + w] = 0
        n_t = min(max_masks, max(1, int(L * time_ratio / 10)))
        for _ in range(n_t):
            w = int(rng.integers(0, min(max_t, int(0.1 * L)) + 1))
            t0 = int(rng.integers(0, max(1, L - w + 1)))
            x[b, t0:t0 + w] = 0
    return x


def collate(store: FeatureStore, idx: list[int], tok_cache: dict, tok: Tokenizer, pad_to: int = 32):
    # pad the time axis to a multiple of `pad_to` frames (masked anyway): few distinct shapes keep the
    # oneDNN primitive cache and the allocator from growing without bound
    T = max(store.frames[i] for i in idx)
    T = (T + pad_to - 1) // pad_to * pad_to
    F = store.arrays[0].shape[1]
    feats = torch.zeros(len(idx), T, F)
    lengths = torch.zeros(len(idx), dtype=torch.int64)
    labels = []
    for b, i in enumerate(idx):
        f = torch.from_numpy(store.feats(i).astype(np.float32))
        feats[b, : f.shape[0]] = f
        lengths[b] = f.shape[0]
        if i not in tok_cache:
            tok_cache[i] = tok.encode(store.texts[i])
        labels.append(tok_cache[i])
    U = max(len(l) for l in labels)
    targets = torch.zeros(len(idx), U, dtype=torch.int32)
    tlen = torch.zeros(len(idx), dtype=torch.int32)
    for b, l in enumerate(labels):
        targets[b, : len(l)] = torch.tensor(l, dtype=torch.int32)
        tlen[b] = len(l)
    return feats, lengths, targets, tlen


def lr_at(step: int, peak: float, warmup: int) -> float:
    step = max(step, 1)
    return peak * min(step / warmup, math.sqrt(warmup / step))


def evaluate(model, dev: FeatureStore, idx: list[int], tok: Tokenizer, bs: int = 16) -> float:
    refs, hyps = [], []
    for s in range(0, len(idx), bs):
        chunk = idx[s:s + bs]
        T = max(dev.frames[i] for i in chunk)
        feats = torch.zeros(len(chunk), T, dev.arrays[0].shape[1])
        for b, i in enumerate(chunk):
            feats[b, : dev.frames[i]] = torch.from_numpy(dev.feats(i).astype(np.float32))
        lengths = torch.tensor([dev.frames[i] for i in chunk])
        for h in greedy_batch(model, feats, lengths):
            hyps.append(tok.decode(h))
        refs.extend(dev.texts[i] for i in chunk)
    return wer(refs, hyps), list(zip(refs, hyps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=data_root(), required=data_root() is None, help="data folder (default $USM_DATA)")
    ap.add_argument("--exp", required=True, help="run folder: checkpoints and logs")
    ap.add_argument("--config", default="trained", help="named config or path to a JSON config")
    ap.add_argument("--tokenizer", default=data_root("tokenizer", "spm256.model"),
                    required=data_root() is None, help="SentencePiece model (default $USM_DATA/tokenizer/spm256.model)")
    ap.add_argument("--max-frames", type=int, default=6000, help="padded 10 ms frames per batch")
    ap.add_argument("--max-batch", type=int, default=48)
    ap.add_argument("--max-utt-frames", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=800)
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--specaug-start", type=int, default=1500)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--keep", type=int, default=3)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-utts", type=int, default=100)
    ap.add_argument("--eval-spread", action="store_true",
                    help="evaluate on --eval-utts dev utterances spread evenly over the dev set (instead of the first "
                         "ones) and log WER per id prefix too (e.g. so762 / tdev)")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=10 ** 9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe", default=None,
                    help="QAT: fake-quantize the encoder matrices with this recipe (usm_ref.qat.RECIPES, e.g. exp5)")
    ap.add_argument("--scale-format", default="int8", help="QAT scale format: f32, int8 or int8-row")
    ap.add_argument("--init", default=None, help="start a new run from this (float) checkpoint, e.g. exp0's latest.pt")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.exp, exist_ok=True)
    log_f = open(os.path.join(args.exp, "train.log"), "a")

    def log(msg):
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    cfg = ModelConfig.load(args.config) if args.config.endswith(".json") else named_config(args.config)
    tok = Tokenizer(args.tokenizer)
    assert len(tok) == cfg.vocab_size, (len(tok), cfg.vocab_size)
    torch.manual_seed(args.seed)
    model = ConformerRNNT(cfg, dropout=args.dropout)
    stats = np.load(os.path.join(args.data, "feats", "stats.npz"))
    model.set_normalisation(stats["mean"], stats["std"])
    latest = os.path.join(args.exp, "latest.pt")
    if args.init and not os.path.exists(latest):
        ck0 = torch.load(args.init, map_location="cpu", weights_only=False)
        model.load_state_dict(ck0["model"])
        log(f"initialised from {args.init} (step {ck0.get('step')})")
    if args.recipe:  # after --init (float names), before resuming (QAT names)
        n_fq = qat.apply_recipe(model, args.recipe, scale_format=args.scale_format)
        log(f"QAT recipe {args.recipe} with {args.scale_format} scales: {n_fq} encoder matrices fake-quantized")
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.dim() < 2 or n.endswith((".u", ".v")) or "embedding" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    step, epoch, pos, order_seed = 0, 0, 0, args.seed
    if os.path.exists(latest):
        ck = torch.load(latest, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, epoch, pos = ck["step"], ck["epoch"], ck["pos"]
        log(f"resumed from {latest} at step {step} epoch {epoch} batch {pos}")
    else:
        cfg.save(os.path.join(args.exp, "config.json"))
        with open(os.path.join(args.exp, "args.json"), "w") as f:
            json.dump(vars(args), f, indent=1)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"params {n_params} args {json.dumps(vars(args))}")

    train = FeatureStore(os.path.join(args.data, "feats", "train"))
    dev = FeatureStore(os.path.join(args.data, "feats", "dev"))
    dev_idx = list(range(min(args.eval_utts, len(dev))))
    if args.eval_spread and len(dev) > args.eval_utts:
        dev_idx = sorted({int(i) for i in np.linspace(0, len(dev) - 1, args.eval_utts)})
    tok_cache: dict = {}
    aug_rng = np.random.default_rng(args.seed + step)

    def save():
        path = os.path.join(args.exp, f"step_{step:07d}.pt")
        ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch, "pos": pos,
              "config": cfg.to_dict(), "args": vars(args)}
        torch.save(ck, path + ".tmp")
        os.replace(path + ".tmp", path)
        if os.path.lexists(latest):
            os.remove(latest)
        os.symlink(os.path.basename(path), latest)
        ckpts = sorted(p for p in os.listdir(args.exp) if p.startswith("step_") and p.endswith(".pt"))
        for p in ckpts[:-args.keep]:
            n = int(p[5:12])
            if n % 5000 != 0:  # keep every 5000th step for the record
                os.remove(os.path.join(args.exp, p))
        log(f"saved {path}")

    model.train()
    acc_loss, acc_n, acc_frames, t_last = 0.0, 0, 0, time.time()
    while step < args.max_steps:
        new = train.refresh()
        usable = [i for i in range(len(train)) if train.frames[i] <= args.max_utt_frames]
        batches = make_batches([train.frames[i] for i in usable], args.max_frames, args.max_batch,
                               random.Random(order_seed * 1000 + epoch))
        batches = [[usable[i] for i in b] for b in batches]
        log(f"epoch {epoch}: {len(usable)} utts ({new} new), {len(batches)} batches, starting at batch {pos}")
        while pos < len(batches) and step < args.max_steps:
            idx = batches[pos]
            feats, lengths, targets, tlen = collate(train, idx, tok_cache, tok)
            feats = (feats - model.encoder.mean) / model.encoder.std
            feats = feats * (torch.arange(feats.shape[1])[None, :] < lengths[:, None])[..., None]
            if step >= args.specaug_start:
                spec_augment(feats, lengths, aug_rng)
            for g in opt.param_groups:
                g["lr"] = lr_at(step + 1, args.lr, args.warmup)
            enc, enc_len = model.encoder(feats, lengths, normalised=True)
            enc = enc[:, : int(enc_len.max())]  # rnnt_loss wants logits.size(1) == max(logit_lengths)
            pred = model.predictor.forward_train(targets.long())
            logits = model.joint.full(enc, pred)
            loss_sum = AF.rnnt_loss(logits, targets, enc_len.to(torch.int32), tlen, blank=cfg.blank_id,
                                    reduction="sum")
            loss = loss_sum / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
            if not math.isfinite(loss.item()) or not math.isfinite(gnorm):
                log(f"step {step}: non-finite loss/grad ({loss.item()}, {gnorm}); batch skipped")
                opt.zero_grad(set_to_none=True)
            else:
                opt.step()
            step += 1
            pos += 1
            acc_loss += float(loss_sum.detach())
            acc_n += int(tlen.sum())
            acc_frames += int(lengths.sum())
            if step % args.log_every == 0:
                dt = time.time() - t_last
                log(f"step {step} loss/token {acc_loss / max(acc_n, 1):.4f} lr {opt.param_groups[0]['lr']:.2e} "
                    f"gnorm {gnorm:.2f} bs {len(idx)}x{feats.shape[1]} {dt / args.log_every:.2f}s/step "
                    f"audio {acc_frames / 100 / dt:.1f}x")
                acc_loss, acc_n, acc_frames, t_last = 0.0, 0, 0, time.time()
            if step % args.ckpt_every == 0:
                save()
            if step % args.eval_every == 0 and dev_idx:
                t0 = time.time()
                w, pairs = evaluate(model, dev, dev_idx, tok)
                groups = ""
                if args.eval_spread:
                    by: dict = {}
                    for i, (r, h) in zip(dev_idx, pairs):
                        by.setdefault(dev.ids[i].split("-", 1)[0], []).append((r, h))
                    groups = " " + " ".join(f"{g} {wer([r for r, _ in v], [h for _, h in v]) * 100:.2f}% ({len(v)})"
                                            for g, v in sorted(by.items()))
                log(f"step {step} dev WER {w * 100:.2f}% ({len(dev_idx)} utts, {time.time() - t0:.0f}s){groups} "
                    f"e.g. REF: {pairs[0][0]} | HYP: {pairs[0][1]}")
                t_last = time.time()
        if pos >= len(batches):
            epoch += 1
            pos = 0
    save()


if __name__ == "__main__":
    main()
