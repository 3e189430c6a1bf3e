"""Extract speechocean762 (real non-native read English, 16 kHz) from a git snapshot and write manifests.

python3 scripts/prepare_so762.py [--repo GIT_DIR] [--data /root/usm-data]

The snapshot is a git directory without a work tree (default /work/.mirror/jimbozhang+speechocean762/repo);
its Kaldi-style train/ and test/ folders (text, wav.scp, utt2spk, spk2utt, spk2age, spk2gender) give the
official speaker-disjoint split (125 + 125 speakers, 2500 + 2500 utterances).

Outputs under <data>:
  so762/                      the extracted corpus (WAVE/, train/, test/, README.md)
  so762-train.tsv             official train half minus the dev speakers -> training
  so762-dev.tsv               8 train-half speakers held out -> dev (training distribution, never trained on)
  so762-test.tsv              official test half -> evaluation only (never trained or tuned on)
Manifest line: id<TAB>path<TAB>seconds<TAB>text (text lowercased; apostrophes kept). Idempotent.
"""
import argparse
import os
import random
import subprocess
import sys

import soundfile as sf

DEFAULT_REPO = "/work/.mirror/jimbozhang+speechocean762/repo"
N_DEV_SPEAKERS = 8


def git(repo, *args, **kw):
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, **kw)


def read_kaldi(path):
    out = {}
    for ln in open(path):
        parts = ln.rstrip("\n").split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def norm(text):
    t = text.lower().replace("\u2019", "'").replace("-", " ")
    t = "".join(c if ("a" <= c <= "z" or c == "'") else " " for c in t)
    return " ".join(w.strip("'") for w in t.split() if w.strip("'"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.environ.get("SO762_REPO", DEFAULT_REPO))
    ap.add_argument("--data", default=os.environ.get("USM_DATA", "/root/usm-data"))
    args = ap.parse_args()
    dest = os.path.join(args.data, "so762")
    marker = os.path.join(dest, ".extracted")
    if not os.path.exists(marker):
        if not os.path.isdir(args.repo) or subprocess.run(
                ["git", f"--git-dir={args.repo}", "rev-parse", "--verify", "HEAD:train/text"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"speechocean762 snapshot not found at {args.repo}: fetch the git snapshot of "
                     "github.com/jimbozhang/speechocean762 first (the mirror tool writes it to "
                     "/work/.mirror/jimbozhang+speechocean762/repo) or pass --repo / SO762_REPO")
        os.makedirs(dest, exist_ok=True)
        head = git(args.repo, "rev-parse", "HEAD", capture_output=True, text=True).stdout.strip()
        print("extracting speechocean762", head, "->", dest, flush=True)
        arch = subprocess.Popen(["git", f"--git-dir={args.repo}", "archive", "HEAD", "README.md", "train", "test",
                                 "WAVE"], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", dest], stdin=arch.stdout, check=True)
        if arch.wait() != 0:
            sys.exit("git archive failed")
        with open(marker, "w") as f:
            f.write(head + "\n")
    commit = open(marker).read().strip()

    out = {}
    for half in ("train", "test"):
        text = read_kaldi(os.path.join(dest, half, "text"))
        wav = read_kaldi(os.path.join(dest, half, "wav.scp"))
        spk = read_kaldi(os.path.join(dest, half, "utt2spk"))
        rows = []
        for uid in sorted(text):
            path = os.path.join(dest, wav[uid])
            info = sf.info(path)
            assert info.samplerate == 16000 and info.channels == 1, (path, info)
            rows.append((f"so762-{uid}", path, info.frames / info.samplerate, norm(text[uid]), spk[uid]))
        out[half] = rows
    speakers = sorted({r[4] for r in out["train"]})
    dev_spk = set(random.Random(762).sample(speakers, N_DEV_SPEAKERS))
    splits = {
        "so762-train": [r for r in out["train"] if r[4] not in dev_spk],
        "so762-dev": [r for r in out["train"] if r[4] in dev_spk],
        "so762-test": out["test"],
    }
    for name, rows in splits.items():
        tmp = os.path.join(args.data, name + ".tsv.tmp")
        with open(tmp, "w") as f:
            for uid, path, secs, text, _ in rows:
                f.write(f"{uid}\t{path}\t{secs:.3f}\t{text}\n")
        os.replace(tmp, os.path.join(args.data, name + ".tsv"))
        with open(os.path.join(args.data, name + ".spk.tsv"), "w") as f:
            for uid, _, _, _, s in rows:
                f.write(f"{uid}\t{s}\n")
        print(name, len(rows), "utts", f"{sum(r[2] for r in rows) / 3600:.2f} h",
              len({r[4] for r in rows}), "speakers", flush=True)
    print("speechocean762 commit", commit, "dev speakers", sorted(dev_spk))


if __name__ == "__main__":
    main()
