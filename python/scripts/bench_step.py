"""Seconds per training step (forward + RNN-T loss + backward + AdamW) on one thread, on the real feature shards.

python3 scripts/bench_step.py --configs trained,real --steps 12 [--max-frames 5000]

Batches come from usm_ref.train.make_batches over <data>/feats/train (the training batcher); the same batches
are used for every config. The first 2 steps are warm-up and not counted.
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torchaudio.functional as AF

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref.config import ModelConfig, named_config  # noqa: E402
from usm_ref.data import FeatureStore  # noqa: E402
from usm_ref.model import ConformerRNNT  # noqa: E402
from usm_ref.tokenizer import Tokenizer  # noqa: E402
from usm_ref.train import collate, make_batches  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/root/usm-data")
    ap.add_argument("--configs", default="trained,real")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--max-frames", type=int, default=5000)
    ap.add_argument("--max-batch", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokenizer", default="/root/usm-data/tokenizer/spm256.model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = FeatureStore(os.path.join(args.data, "feats", "train"))
    tok = Tokenizer(args.tokenizer)
    usable = [i for i in range(len(store)) if store.frames[i] <= 1000]
    batches = make_batches([store.frames[i] for i in usable], args.max_frames, args.max_batch, random.Random(0))
    batches = [[usable[i] for i in b] for b in batches][: args.steps]
    results = {}
    for name in args.configs.split(","):
        cfg = ModelConfig.load(name) if name.endswith(".json") else named_config(name)
        torch.manual_seed(0)
        model = ConformerRNNT(cfg, dropout=0.1)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times, audio = [], 0.0
        cache = {}
        for k, idx in enumerate(batches):
            feats, lengths, targets, tlen = collate(store, idx, cache, tok)
            t0 = time.time()
            enc, enc_len = model.encoder(feats, lengths, normalised=True)
            enc = enc[:, : int(enc_len.max())]
            logits = model.joint.full(enc, model.predictor.forward_train(targets.long()))
            loss = AF.rnnt_loss(logits, targets, enc_len.to(torch.int32), tlen, blank=cfg.blank_id,
                                reduction="sum") / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if k >= 2:
                times.append(time.time() - t0)
                audio += float(lengths.sum()) / 100
        n_params = sum(p.numel() for p in model.parameters())
        results[name] = {"params": n_params, "s_per_step": float(np.mean(times)),
                         "audio_s_per_step": audio / len(times), "realtime_x": audio / sum(times)}
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
