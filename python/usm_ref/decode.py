"""Greedy RNN-T search (Architecture.md section 5) and WER."""
from __future__ import annotations

import torch

from .data import data_root
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


def read_dataset(path: str):
    """(id, audio path, reference) rows: a training manifest (id, path, seconds, text), or a directory holding audio
    and transcripts.tsv (id, seconds, transcript with a header line; the format of ../shared/data/asterisk-dev,
    references normalised as usm-bench wer does)."""
    import os

    from .data import read_manifest
    from .textnorm import normalise_text

    if not os.path.isdir(path):
        return [(uid, audio, text) for uid, audio, _, text in read_manifest(path)]
    rows = [ln.rstrip("\n").split("\t") for ln in open(os.path.join(path, "transcripts.tsv"))][1:]
    return [(uid, os.path.join(path, uid + ".flac"), normalise_text(text)) for uid, _, text in rows]


def main():
    """Greedy WER of a training checkpoint (float or QAT): python -m usm_ref.decode CKPT MANIFEST|DIR [--limit N]."""
    import argparse
    import os

    import soundfile as sf

    from .export import load_checkpoint
    from .frontend import log_mel_np
    from .tokenizer import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("data", help="a manifest TSV, or a directory with transcripts.tsv (e.g. ../shared/data/asterisk-dev)")
    ap.add_argument("--tokenizer", default=data_root("tokenizer", "spm256.model"),
                    required=data_root() is None, help="SentencePiece model (default $USM_DATA/tokenizer/spm256.model)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, model, step = load_checkpoint(args.ckpt)
    tok = Tokenizer(args.tokenizer)
    rows = read_dataset(args.data)
    if args.limit:
        rows = rows[: args.limit]
    refs, hyps = [], []
    for uid, path, text in rows:
        w, sr = sf.read(path, dtype="float32")
        if w.ndim > 1:
            w = w.mean(1)
        assert sr == cfg.sample_rate, f"{path}: {sr} Hz, the model takes {cfg.sample_rate}"
        f = torch.from_numpy(log_mel_np(w, cfg.frontend, cfg.sample_rate))[None]
        h = tok.decode(greedy_batch(model, f, torch.tensor([f.shape[1]]))[0])
        refs.append(text)
        hyps.append(h)
        print(f"{uid}\t{text}\t{h}", flush=True)
    name = os.path.basename(os.path.normpath(args.data))
    print(f"WER {wer(refs, hyps) * 100:.2f}% over {len(rows)} utts ({name}), step {step}")


if __name__ == "__main__":
    main()
