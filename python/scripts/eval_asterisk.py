"""Greedy-decode WER of a checkpoint on ../shared/data/asterisk-dev (evaluation only, never training).

python3 scripts/eval_asterisk.py CKPT [--limit N]
"""
import argparse
import os
import sys

import soundfile as sf
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref.export import load_checkpoint  # noqa: E402
from usm_ref.decode import greedy_batch, wer  # noqa: E402
from usm_ref.frontend import log_mel_np  # noqa: E402
from usm_ref.textnorm import normalise_text  # noqa: E402
from usm_ref.tokenizer import Tokenizer  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "asterisk-dev")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--data", default=os.path.normpath(DATA))
    ap.add_argument("--tokenizer", default="/root/usm-data/tokenizer/spm256.model")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, model, step = load_checkpoint(args.ckpt)  # float or QAT checkpoints
    tok = Tokenizer(args.tokenizer)
    rows = [ln.rstrip("\n").split("\t") for ln in open(os.path.join(args.data, "transcripts.tsv"))][1:]
    if args.limit:
        rows = rows[: args.limit]
    refs, hyps = [], []
    for uid, secs, text in rows:
        w, sr = sf.read(os.path.join(args.data, uid + ".flac"), dtype="float32")
        if w.ndim > 1:
            w = w.mean(1)
        assert sr == cfg.sample_rate
        f = torch.from_numpy(log_mel_np(w, cfg.frontend, cfg.sample_rate))[None]
        h = tok.decode(greedy_batch(model, f, torch.tensor([f.shape[1]]))[0])
        refs.append(normalise_text(text))
        hyps.append(h)
        print(f"{uid}\t{refs[-1]}\t{h}", flush=True)
    print(f"asterisk-dev WER {wer(refs, hyps) * 100:.2f}% over {len(rows)} utts, step {step}")


if __name__ == "__main__":
    main()
