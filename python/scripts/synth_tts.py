"""Synthesize the v2 TTS corpus (issue 23): espeak-ng, flite and Festival voices, prose + spoken numbers.

python3 scripts/synth_tts.py --data /root/usm-data --n-prose 20000 --n-numbers 6000

One worker (sequential), resumable and prefix-stable: job i's voice, rate and pitch depend only on (split, i),
so a later run with larger --n-prose / --n-numbers appends to the same manifests. Outputs (16 kHz mono 16-bit):
  tts-prose-train.tsv, tts-num-train.tsv     training voices (audio/tts/train/...)
  tts-dev.tsv                                training voices, held-out sentences (300 prose + 100 numbers)
  test-synthetic.tsv                         held-out voices, held-out sentences (600 prose + 200 numbers)
  *.voices.tsv                               id -> engine:voice
  text/train_text.txt                        ALL training text (tokenizer input): prose train sentences,
                                             --n-numbers-text number sentences, speechocean762 train text
Dev/test WAVs get a -80..-60 dBFS white noise floor baked in (deterministic per id), like add_noise_floor.py.

Held-out voices (never in train/dev): flite slt, Festival cmu_us_slt_arctic_hts, espeak en-us-nyc+m8 and
en-gb-x-gbcwmd+f5 (none of the bases en-us-nyc / en-gb-x-gbcwmd nor the variants m8 / f5 are used for training).
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from usm_ref.numbers import number_sentences  # noqa: E402

ESPEAK_BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
                   "klatt", "klatt2", "klatt3", "klatt4", "Andy", "annie", "linda", "steph", "edward", "john"]
FLITE_TRAIN = ["kal", "kal16", "awb", "rms"]
FESTIVAL_TRAIN = ["kal_diphone", "ked_diphone"]
TEST_VOICES = [("flite", "slt"), ("festival", "cmu_us_slt_arctic_hts"), ("espeak", "en-us-nyc+m8"),
               ("espeak", "en-gb-x-gbcwmd+f5")]
N_TEST_PROSE, N_DEV_PROSE = 600, 300
N_TEST_NUM, N_DEV_NUM = 200, 100
FLITE_F0 = {"kal": 100, "kal16": 100, "awb": 110, "rms": 100, "slt": 170}
FEST_F0 = {"kal_diphone": 105, "ked_diphone": 105, "cmu_us_slt_arctic_hts": 170}


def train_voice(rng):
    r = rng.random()
    if r < 0.15:
        return ("flite", rng.choice(FLITE_TRAIN))
    if r < 0.35:
        return ("festival", rng.choice(FESTIVAL_TRAIN))
    base = rng.choice(ESPEAK_BASES)
    var = rng.choice(ESPEAK_VARIANTS)
    return ("espeak", base + ("+" + var if var else ""))


def params(engine, voice, rng):
    if engine == "espeak":
        return rng.uniform(135, 200), rng.uniform(25, 75)
    if engine == "flite":
        return rng.uniform(0.85, 1.2), (FLITE_F0[voice] * rng.uniform(0.85, 1.2) if rng.random() < 0.7 else None)
    return rng.uniform(0.85, 1.2), FEST_F0[voice] * rng.uniform(0.85, 1.25)


def job(split, i, text, voice_fn):
    rng = random.Random(zlib.crc32(f"{split}:{i}".encode()))
    engine, voice = voice_fn(rng, i)
    sp, pi = params(engine, voice, rng)
    gain = -1 - rng.random() * 11
    return dict(uid=f"{split}-{i:06d}", engine=engine, voice=voice, text=text, speed=sp, pitch=pi, gain=gain)


def _sox(src, dst, gain):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    subprocess.run(["sox", src, "-r", "16000", "-c", "1", "-b", "16", dst,
                    "silence", "1", "0.02", "0.2%", "reverse", "silence", "1", "0.02", "0.2%", "reverse",
                    "pad", "0.15", "0.2", "gain", "-n", f"{gain:.1f}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _scm_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_batch(jobs, out_dir, tmpdir):
    """Synthesize jobs (dicts) into out_dir/<uid>.wav; Festival jobs go through one festival process."""
    fest = [j for j in jobs if j["engine"] == "festival"]
    if fest:
        scm = os.path.join(tmpdir, "batch.scm")
        with open(scm, "w") as f:
            for j in fest:
                f.write(f"(voice_{j['voice']})\n")
                f.write(f"(Parameter.set 'Duration_Stretch {j['speed']:.3f})\n")
                if j["voice"].endswith("_diphone"):
                    f.write(f"(set! int_lr_params '((target_f0_mean {j['pitch']:.1f}) (target_f0_std "
                            f"{j['pitch'] * 0.14:.1f}) (model_f0_mean 170) (model_f0_std 34)))\n")
                f.write(f"(utt.save.wave (utt.synth (Utterance Text {_scm_str(j['text'])})) "
                        f"\"{tmpdir}/{j['uid']}.raw.wav\" 'riff)\n")
        subprocess.run(["festival", "--batch", scm], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    out = []
    for j in jobs:
        raw = os.path.join(tmpdir, j["uid"] + ".raw.wav")
        if j["engine"] == "espeak":
            subprocess.run(["espeak-ng", "-v", j["voice"], "-s", str(int(j["speed"])), "-p", str(int(j["pitch"])),
                            "-w", raw, j["text"]], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif j["engine"] == "flite":
            cmd = ["flite", "-voice", j["voice"], "-t", j["text"], "-o", raw,
                   "--setf", f"duration_stretch={j['speed']:.3f}"]
            if j["pitch"] is not None:
                cmd += ["--setf", f"int_f0_target_mean={j['pitch']:.1f}"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.path.exists(raw):
            print("failed", j["uid"], j["engine"], j["voice"], flush=True)
            continue
        path = os.path.join(out_dir, j["uid"] + ".wav")
        _sox(raw, path, j["gain"])
        os.remove(raw)
        out.append((j, path, sf.info(path).frames / 16000.0))
    return out


def noise_floor(path, uid):
    w, sr = sf.read(path, dtype="float64")
    rng = np.random.default_rng(zlib.crc32(uid.encode()))
    level = 10 ** (rng.uniform(-80, -60) / 20)
    sf.write(path, np.clip(w + rng.standard_normal(w.shape) * level, -1, 32767 / 32768), sr, subtype="PCM_16")


def run_split(name, jobs, data, deadline, floor=False, chunk=50):
    man = os.path.join(data, f"{name}.tsv")
    vman = os.path.join(data, f"{name}.voices.tsv")
    done = set()
    if os.path.exists(man):
        done = {ln.split("\t", 1)[0] for ln in open(man) if ln.count("\t") == 3}
    todo = [j for j in jobs if j["uid"] not in done]
    print(name, "todo", len(todo), "done", len(done), flush=True)
    n = 0
    with open(man, "a") as f, open(vman, "a") as fv, tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        for s in range(0, len(todo), chunk):
            if time.time() > deadline:
                print(name, "deadline reached", flush=True)
                return False
            batch = todo[s:s + chunk]
            sub = os.path.join(data, "audio", "tts", name, f"{int(batch[0]['uid'].rsplit('-', 1)[1]) // 1000:03d}")
            for j, path, secs in synth_batch(batch, sub, tmp):
                if floor:
                    noise_floor(path, j["uid"])
                f.write(f"{j['uid']}\t{path}\t{secs:.3f}\t{j['text']}\n")
                fv.write(f"{j['uid']}\t{j['engine']}:{j['voice']}\n")
                n += 1
            f.flush()
            fv.flush()
            if (s // chunk) % 10 == 0:
                print(name, len(done) + n, flush=True)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("USM_DATA", "/root/usm-data"))
    ap.add_argument("--sentences", default=None, help="default <data>/text/sentences-v2.tsv")
    ap.add_argument("--n-prose", type=int, default=20000, help="prose training utterances")
    ap.add_argument("--n-numbers", type=int, default=6000, help="number-sentence training utterances")
    ap.add_argument("--n-numbers-text", type=int, default=20000, help="number sentences in the tokenizer text")
    ap.add_argument("--minutes", type=float, default=1e9, help="stop (resumably) after this many minutes")
    args = ap.parse_args()
    deadline = time.time() + args.minutes * 60
    data = args.data
    sents = [ln.rstrip("\n").split("\t")[1] for ln in open(args.sentences or f"{data}/text/sentences-v2.tsv")]
    test_p = sents[:N_TEST_PROSE]
    dev_p = sents[N_TEST_PROSE:N_TEST_PROSE + N_DEV_PROSE]
    train_p = sents[N_TEST_PROSE + N_DEV_PROSE:]
    test_n = number_sentences(N_TEST_NUM, seed=3)
    dev_n = number_sentences(N_DEV_NUM, seed=2)
    held = set(test_n) | set(dev_n) | set(test_p) | set(dev_p)
    so_held = {ln.rstrip("\n").split("\t")[3] for name in ("so762-test", "so762-dev")
               for ln in open(f"{data}/{name}.tsv")}
    train_n = [s for s in number_sentences(args.n_numbers_text, seed=1) if s not in held]

    # tokenizer / LM text: training text only (held-out sentences and the speechocean762 test/dev text excluded)
    so_train = [ln.rstrip("\n").split("\t")[3] for ln in open(f"{data}/so762-train.tsv")]
    tt = os.path.join(data, "text", "train_text.txt")
    with open(tt + ".tmp", "w") as f:
        for s in train_p + train_n + so_train:
            f.write(s + "\n")
    os.replace(tt + ".tmp", tt)
    print("train text", len(train_p), "prose", len(train_n), "numbers", len(so_train), "so762;",
          "so762 train sentences also in so762 test/dev:", sum(1 for s in set(so_train) if s in so_held), flush=True)

    held_voice = lambda r, i: TEST_VOICES[i % len(TEST_VOICES)]  # noqa: E731
    train_voice_fn = lambda r, i: train_voice(r)  # noqa: E731
    test_jobs = [job("tsyn", i, t, held_voice) for i, t in enumerate(test_p + test_n)]
    dev_jobs = [job("tdev", i, t, train_voice_fn) for i, t in enumerate(dev_p + dev_n)]
    ok = run_split("test-synthetic", test_jobs, data, deadline, floor=True)
    ok = ok and run_split("tts-dev", dev_jobs, data, deadline, floor=True)
    # training: interleave prose and numbers in rounds so that a partial build has both
    n_p, n_n = min(args.n_prose, len(train_p)), min(args.n_numbers, len(train_n))
    prose_jobs = [job("tpro", i, t, train_voice_fn) for i, t in enumerate(train_p[:n_p])]
    num_jobs = [job("tnum", i, t, train_voice_fn) for i, t in enumerate(train_n[:n_n])]
    rounds = 10
    for r in range(1, rounds + 1):
        if not ok:
            break
        ok = run_split("tts-prose-train", prose_jobs[:n_p * r // rounds], data, deadline)
        ok = ok and run_split("tts-num-train", num_jobs[:n_n * r // rounds], data, deadline)
    print("synthesis", "complete" if ok else "stopped at the deadline (rerun to continue)", flush=True)


if __name__ == "__main__":
    main()
