"""Greedy RNN-T search (Architecture.md section 5) and WER."""
from __future__ import annotations

import torch

from .model import ConformerRNNT


@torch.no_grad()
def greedy_search(model: ConformerRNNT, enc: torch.Tensor) -> list[int]:
    """enc: [T', dim] encoder output of one utterance. Returns emitted token ids."""
    cfg = model.cfg
    blank = cfg.blank_id
    pred_net, joint = model.predictor, model.joint
    enc_p = joint.enc_proj(enc)  # [T', joint]
    tok = torch.tensor([[blank]])
    out, state = pred_net(tok)  # start state: predictor fed with blank's embedding
    pred_p = joint.pred_proj(out[0, 0])
    hyp: list[int] = []
    for t in range(enc_p.shape[0]):
        for _ in range(cfg.max_symbols_per_frame):
            logits = joint.out(torch.tanh(enc_p[t] + pred_p))
            k = int(torch.argmax(logits))
            if k == blank:
                break
            hyp.append(k)
            out, state = pred_net(torch.tensor([[k]]), state)
            pred_p = joint.pred_proj(out[0, 0])
    return hyp


@torch.no_grad()
def greedy_batch(model: ConformerRNNT, feats: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """feats: [B, T, mel] un-normalised log-mel. Encoder batched, search per utterance."""
    was_training = model.training
    model.eval()
    enc, enc_len = model.encoder(feats, lengths)
    hyps = [greedy_search(model, enc[b, : int(enc_len[b])]) for b in range(enc.shape[0])]
    model.train(was_training)
    return hyps


def edit_distance(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    errs = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    words = sum(len(r.split()) for r in refs)
    return errs / max(words, 1)


def main():
    """Decode a manifest (or wav files) with a training checkpoint: python -m usm_ref.decode CKPT MANIFEST."""
    import argparse
    import os

    import soundfile as sf

    from .data import read_manifest
    from .frontend import log_mel_np
    from .tokenizer import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("manifest")
    ap.add_argument("--tokenizer", default="/root/usm-data/tokenizer/spm256.model")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from .export import load_checkpoint

    cfg, model, _ = load_checkpoint(args.ckpt)  # float or QAT checkpoints
    tok = Tokenizer(args.tokenizer)
    rows = read_manifest(args.manifest)
    if args.limit:
        rows = rows[: args.limit]
    refs, hyps = [], []
    for uid, path, secs, text in rows:
        w, sr = sf.read(path, dtype="float32")
        f = torch.from_numpy(log_mel_np(w, cfg.frontend, cfg.sample_rate))[None]
        h = tok.decode(greedy_batch(model, f, torch.tensor([f.shape[1]]))[0])
        refs.append(text)
        hyps.append(h)
        print(f"{uid}\t{text}\t{h}", flush=True)
    print(f"WER {wer(refs, hyps) * 100:.2f}% over {len(rows)} utts ({os.path.basename(args.manifest)})")


if __name__ == "__main__":
    main()
