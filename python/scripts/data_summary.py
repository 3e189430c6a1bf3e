"""Markdown summary of the built v2 data: utterances and hours per manifest (source audio), per voice engine,
and per feature-shard group (after augmentation).  python3 scripts/data_summary.py [--data /root/usm-data]"""
import argparse
import glob
import os
from collections import defaultdict

MANIFESTS = [
    ("so762-train", "speechocean762 train half (8 dev speakers removed)", "train"),
    ("tts-prose-train", "TTS prose, training voices", "train"),
    ("tts-num-train", "TTS spoken numbers, training voices", "train"),
    ("so762-dev", "speechocean762 train half, 8 held-out speakers", "dev"),
    ("tts-dev", "TTS, training voices, held-out sentences", "dev"),
    ("test-synthetic", "TTS, held-out voices and sentences", "eval only"),
    ("so762-test", "speechocean762 test half", "eval only"),
]


def rows(path):
    out = []
    if os.path.exists(path):
        for ln in open(path):
            p = ln.rstrip("\n").split("\t")
            if len(p) >= 4:
                out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("USM_DATA", "/root/usm-data"))
    a = ap.parse_args()
    print("| manifest | what | use | utterances | hours | words |\n|---|---|---|---:|---:|---:|")
    for name, what, use in MANIFESTS:
        r = rows(os.path.join(a.data, name + ".tsv"))
        print(f"| {name}.tsv | {what} | {use} | {len(r)} | {sum(float(x[2]) for x in r) / 3600:.2f} | "
              f"{sum(len(x[3].split()) for x in r)} |")
    print("\nVoices (source audio, hours):\n\n| manifest | engine | utterances | hours |\n|---|---|---:|---:|")
    for name, _, _ in MANIFESTS:
        vp = os.path.join(a.data, name + ".voices.tsv")
        if not os.path.exists(vp):
            continue
        secs = {x[0]: float(x[2]) for x in rows(os.path.join(a.data, name + ".tsv"))}
        n, h = defaultdict(int), defaultdict(float)
        for ln in open(vp):
            uid, voice = ln.rstrip("\n").split("\t")
            eng = voice.split(":")[0] if name != "test-synthetic" else voice
            n[eng] += 1
            h[eng] += secs.get(uid, 0.0)
        for eng in sorted(n):
            print(f"| {name} | {eng} | {n[eng]} | {h[eng] / 3600:.2f} |")
    print("\nFeature shards (after augmentation):\n\n| split | group | utterances (variants) | hours |\n|---|---|---:|---:|")
    for split in ("train", "dev", "test-synthetic", "so762-test"):
        n, h = defaultdict(int), defaultdict(float)
        for tsv in glob.glob(os.path.join(a.data, "feats", split, "shard_*.tsv")):
            tag = os.path.basename(tsv).split("_")[1]
            for x in rows(tsv):
                n[tag] += 1
                h[tag] += float(x[3])
        for tag in sorted(n):
            print(f"| {split} | {tag} | {n[tag]} | {h[tag] / 3600:.2f} |")
        if len(n) > 1:
            print(f"| {split} | all | {sum(n.values())} | {sum(h.values()) / 3600:.2f} |")


if __name__ == "__main__":
    main()
