"""The small-scale Table 2 (issue 5): export every QAT run of qat_sweep.sh (and the float base, with post-training
quantization for contrast), score each with `usm-bench wer` on the held-out-voice test set and on asterisk-dev, and
print a markdown table with sizes from `usm-bench size`. Results (JSON per model and set, for `usm-bench plot`) go to
OUT (default /root/usm-data/results).

    python3 python/scripts/eval_recipes.py --base BASE.pt --steps N [--runs exp0ft,int4,...] [--limit N]

Needs a release build (`swift build -c release`) and torch (for the export).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, ".build", "release", "usm-bench")
EXPORT = os.path.join(ROOT, "python", "scripts", "export_usm.py")
SETS = {"held-out voices": "/root/usm-data/evalsets/test", "asterisk-dev": os.path.join(ROOT, "..", "shared", "data",
                                                                                          "asterisk-dev")}
PAPER = {"exp0": "float", "int4": "4-bit per channel", "exp1": "2-bit asym. per channel",
         "exp2": "2-bit asym. blocks of 64, clip search", "exp3": "1-bit absmax (asym.) per channel",
         "exp4": "1-bit absmean per channel", "exp5": "1-bit absmean, blocks of 64"}


def sh(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def size_bits(model):
    rows = json.loads(sh([BENCH, "size", "--model", model, "--json"]))["model"]["rows"]
    tot = lambda meta: sum(r["weightBits"] + r[meta] + r["floatBits"] for r in rows)  # noqa: E731
    f32 = 32 * sum(r["elements"] for r in rows)
    enc = [r for r in rows if r["scheme"] != "f32"]
    enc_bits = sum(r["weightBits"] + r["metaBitsInt8"] for r in enc)
    enc_f32 = 32 * sum(r["elements"] for r in enc)
    return {"f32_bits": f32, "bits_f32_meta": tot("metaBitsF32"), "bits_int8_meta": tot("metaBitsInt8"),
            "packed_params": sum(r["elements"] for r in enc), "packed_ratio": enc_f32 / enc_bits if enc_bits else 1.0,
            "file_bytes": os.path.getsize(model)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the float checkpoint every QAT run started from")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--runs", default="exp0ft,int4,exp1,exp2,exp3,exp4,exp5")
    ap.add_argument("--ptq", default="int4,exp1,exp5", help="post-training quantization of the base, for contrast")
    ap.add_argument("--ckpt-root", default="/root/usm-data/ckpt")
    ap.add_argument("--out", default="/root/usm-data/results")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    models = []  # (label, recipe, model path, how)
    models.append(("exp0 (base)", "exp0", args.base, "float base"))
    for r in filter(None, args.ptq.split(",")):
        models.append((f"{r} PTQ", r, args.base, "post-training quantization of the base"))
    for r in args.runs.split(","):
        ck = os.path.join(args.ckpt_root, f"qat-{r}", f"step_{args.steps:07d}.pt")
        if not os.path.exists(ck):
            print(f"skip {r}: {ck} missing", file=sys.stderr)
            continue
        models.append((r if r != "exp0ft" else "exp0", "exp0" if r == "exp0ft" else r, ck,
                       f"+{args.steps} steps" + (" float" if r == "exp0ft" else " QAT")))
    rows = []
    for label, recipe, ck, how in models:
        tag = label.replace(" ", "-").replace("(", "").replace(")", "")
        path = os.path.join(args.out, f"{tag}.usm")
        if not os.path.exists(path):
            cmd = [sys.executable, EXPORT, ck, path, "--recipe", recipe]
            if recipe != "exp0":
                cmd += ["--scale-format", "int8"]
            sh(cmd)
        row = {"label": label, "recipe": recipe, "how": how, "checkpoint": ck, "model": path, **size_bits(path)}
        for set_name, d in SETS.items():
            js = os.path.join(args.out, f"{tag}.{os.path.basename(d)}.json")
            if not os.path.exists(js):
                cmd = [BENCH, "wer", "--model", path, d, "--json"] + (["--limit", str(args.limit)] if args.limit else [])
                with open(js, "w") as f:
                    f.write(sh(cmd))
            with open(js) as f:
                res = json.load(f)
            row[set_name] = res["wer"] * 100
            row[set_name + " rtf"] = res["rtf"]
        rows.append(row)
        print(f"{label}: {row['held-out voices']:.2f}% / {row['asterisk-dev']:.2f}%", file=sys.stderr)
    with open(os.path.join(args.out, "table2.json"), "w") as f:
        json.dump(rows, f, indent=1)
    base = next((r for r in rows if r["label"] == "exp0"), rows[0])
    print("| model | how | WER held-out voices (Δ) | WER asterisk-dev (Δ) | Mbit, f32 / int8 metadata | reduction, f32 / int8 "
          "metadata | packed matrices alone | file MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        d1 = r["held-out voices"] - base["held-out voices"]
        d2 = r["asterisk-dev"] - base["asterisk-dev"]
        print(f"| {r['label']} | {r['how']} | {r['held-out voices']:.2f} ({d1:+.2f}) | {r['asterisk-dev']:.2f} ({d2:+.2f}) "
              f"| {r['bits_f32_meta'] / 1e6:.2f} / {r['bits_int8_meta'] / 1e6:.2f} "
              f"| {r['f32_bits'] / r['bits_f32_meta']:.2f}x / {r['f32_bits'] / r['bits_int8_meta']:.2f}x "
              f"| {r['packed_ratio']:.1f}x | {r['file_bytes'] / 1e6:.2f} |")


if __name__ == "__main__":
    main()
