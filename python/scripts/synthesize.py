"""Synthesize the TTS corpus with espeak-ng and flite (16 kHz mono 16-bit WAV) and write manifests.

Resumable: utterances already listed in a manifest are skipped. Manifests are appended to as
utterances finish, so a trainer can re-read them while synthesis continues.
Manifest line: id<TAB>path<TAB>seconds<TAB>text

Voices held out (test only): flite slt, espeak en-us-nyc+m8, espeak en-gb-x-gbcwmd+f5
(neither the bases en-us-nyc / en-gb-x-gbcwmd nor the variants m8 / f5 are used for train/dev).
Sentences are also disjoint between train, dev and test.
"""
import argparse
import os
import random
import subprocess
import tempfile
from multiprocessing import Pool

ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
                   "klatt", "klatt2", "klatt3", "klatt4", "Andy", "annie", "linda", "steph", "edward", "john"]
FLITE_TRAIN = ["kal", "kal16", "awb", "rms"]
TEST_VOICES = [("flite", "slt"), ("espeak", "en-us-nyc+m8"), ("espeak", "en-gb-x-gbcwmd+f5")]


def train_voice(rng):
    if rng.random() < 0.2:
        return ("flite", rng.choice(FLITE_TRAIN))
    base = rng.choice(ESPEAK_BASES)
    var = rng.choice(ESPEAK_VARIANTS)
    return ("espeak", base + ("+" + var if var else ""))


def synth(job):
    uid, out_path, engine, voice, text, speed, pitch = job
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".wav", dir="/dev/shm", delete=True) as tmp:
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), "-w", tmp.name, text]
        else:
            cmd = ["flite", "-voice", voice, "-t", text, "-o", tmp.name,
                   "--setf", f"duration_stretch={speed:.3f}"]
            if pitch is not None:
                cmd += ["--setf", f"int_f0_target_mean={pitch:.1f}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # 16 kHz mono 16-bit; trim long leading/trailing silence down to ~0.1-0.2 s; random gain
        subprocess.run(["sox", tmp.name, "-r", "16000", "-c", "1", "-b", "16", out_path,
                        "silence", "1", "0.02", "0.2%", "reverse", "silence", "1", "0.02", "0.2%", "reverse",
                        "pad", "0.15", "0.2", "gain", "-n", str(-1 - (hash(uid) % 12))],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n = os.path.getsize(out_path) - 44
    return uid, out_path, n / 2 / 16000.0, text, engine + ":" + voice


def voice_params(engine, voice, rng):
    if engine == "espeak":
        return rng.uniform(145, 195), rng.uniform(30, 70)
    # flite: duration_stretch; f0 mean only changed for some utts
    base_f0 = {"kal": 100, "kal16": 100, "awb": 110, "rms": 100, "slt": 170}[voice]
    return rng.uniform(0.85, 1.2), (base_f0 * rng.uniform(0.85, 1.2) if rng.random() < 0.7 else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", default="/root/usm-data/text/sentences.tsv")
    ap.add_argument("--out", default="/root/usm-data")
    ap.add_argument("--n-test", type=int, default=600)
    ap.add_argument("--n-dev", type=int, default=400)
    ap.add_argument("--train-passes", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    sents = [ln.rstrip("\n").split("\t")[1] for ln in open(args.sentences)]
    test_s = sents[:args.n_test]
    dev_s = sents[args.n_test:args.n_test + args.n_dev]
    train_s = sents[args.n_test + args.n_dev:]
    with open(os.path.join(args.out, "text", "train_text.txt"), "w") as f:
        f.write("\n".join(train_s) + "\n")

    jobs = {"test": [], "dev": [], "train": []}
    rng = random.Random(1234)
    for i, t in enumerate(test_s):
        engine, voice = TEST_VOICES[i % len(TEST_VOICES)]
        sp, pi = voice_params(engine, voice, rng)
        uid = f"test-{i:05d}"
        jobs["test"].append((uid, f"{args.out}/audio/test/{uid}.wav", engine, voice, t, sp, pi))
    for i, t in enumerate(dev_s):
        engine, voice = train_voice(rng)
        sp, pi = voice_params(engine, voice, rng)
        uid = f"dev-{i:05d}"
        jobs["dev"].append((uid, f"{args.out}/audio/dev/{uid}.wav", engine, voice, t, sp, pi))
    for p in range(args.train_passes):
        for i, t in enumerate(train_s):
            engine, voice = train_voice(rng)
            sp, pi = voice_params(engine, voice, rng)
            uid = f"train-p{p}-{i:06d}"
            jobs["train"].append((uid, f"{args.out}/audio/train/p{p}/{i // 1000:03d}/{uid}.wav", engine, voice, t, sp, pi))

    with Pool(args.workers) as pool:
        for split in ("dev", "test", "train"):
            man = os.path.join(args.out, f"{split}.tsv")
            vman = os.path.join(args.out, f"{split}.voices.tsv")
            done = set()
            if os.path.exists(man):
                done = {ln.split("\t", 1)[0] for ln in open(man)}
            todo = [j for j in jobs[split] if j[0] not in done]
            print(split, "todo", len(todo), "done", len(done), flush=True)
            with open(man, "a") as f, open(vman, "a") as fv:
                for k, (uid, path, secs, text, voice) in enumerate(pool.imap(synth, todo, chunksize=8)):
                    f.write(f"{uid}\t{path}\t{secs:.3f}\t{text}\n")
                    fv.write(f"{uid}\t{voice}\n")
                    if k % 200 == 0:
                        f.flush()
                        fv.flush()
                        print(split, k, flush=True)


if __name__ == "__main__":
    main()
