"""`usm-quant`: pack a model's tensors into a usm-infer container with the paper's recipes, inspect a container,
list the recipes, import a NeMo transducer.

    usm-quant recipes
    usm-quant pack model.pt out.usm --recipe exp5 --include 'encoder.*.weight'
    usm-quant inspect out.usm [--json]
    usm-quant import-nemo model.nemo out.usm [--recipe int4]

`pack` reads a PyTorch state dict (.pt/.pth/.bin: a dict of tensors, or one under "state_dict" / "model"; needs
torch) or a numpy .npz (no torch), and packs the 2-D float tensors whose names match `--include` (glob, repeatable)
and not `--exclude`; the rest is stored as f32. Exit status: 0 ok, 64 bad arguments, 65 invalid input data, 66 input
missing or unreadable, 74 output not writable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def _load_tensors(path: str) -> dict:
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(f"usm-quant: reading {path} needs torch (pip install torch), or give a .npz") from e
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a dict of tensors")
    return {k: v for k, v in obj.items() if hasattr(v, "detach")}


def _fail(code: int, msg: str):
    print(f"usm-quant: {msg}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader went away (usm-quant inspect ... | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv=None) -> int:
    from . import toolkit

    ap = argparse.ArgumentParser(prog="usm-quant", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("recipes", help="list the recipes")
    p = sub.add_parser("pack", help="pack a state dict or .npz into a container")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--recipe", required=True, help="a recipe name (usm-quant recipes) or SCHEME[:BLOCK], e.g. int4:64")
    p.add_argument("--include", action="append", help="glob over tensor names to pack (repeatable; default: none)")
    p.add_argument("--exclude", action="append", help="glob over tensor names to keep f32 (repeatable)")
    p.add_argument("--scale-format", default="int8", help="f32, int8 or int8-row (default int8)")
    p.add_argument("--level", type=int, default=19, help="zstd level (default 19)")
    i = sub.add_parser("inspect", help="verify a container and list its tensors")
    i.add_argument("container")
    i.add_argument("--json", action="store_true")
    n = sub.add_parser("import-nemo", help="a NeMo Conformer/FastConformer transducer (.nemo) to a container")
    n.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of python -m usm_ref.nemo.import_nemo")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 64 if e.code else 0

    if args.command == "recipes":
        for r in toolkit.recipes():
            enc, dec = r["encoder"], r["decoder"]
            what = "f32" if enc is None else f"{enc['scheme']}" + (f" blocks of {enc['block']}" if enc["block"] else "")
            print(f"{r['name']:12s} encoder matrices {what}" + (f"; decoder {dec['scheme']}" if dec else ""))
        return 0
    if args.command == "import-nemo":
        from .nemo.import_nemo import main as nemo_main
        return nemo_main(args.rest) or 0
    if args.command == "inspect":
        if not os.path.isfile(args.container):
            return _fail(66, f"{args.container}: missing or not a regular file")
        try:
            info = toolkit.inspect_container(args.container)
        except (ValueError, KeyError, OSError) as e:
            return _fail(65, f"{args.container}: {e}")
        print(json.dumps(info, indent=1) if args.json else toolkit.describe(info))
        return 0
    # pack
    try:
        toolkit.parse_recipe(args.recipe)
    except ValueError as e:
        return _fail(64, str(e))
    if not args.include:
        return _fail(64, "pack needs --include PATTERN: which tensors to pack (e.g. 'encoder.*.weight')")
    if not os.path.isfile(args.input):
        return _fail(66, f"{args.input}: missing or not a regular file")
    try:
        tensors = _load_tensors(args.input)
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(65, f"{args.input}: {e}")
    try:
        r = toolkit.export_container(tensors, args.output, args.recipe, include=args.include, exclude=args.exclude,
                                     scale_format=args.scale_format, level=args.level)
    except OSError as e:
        return _fail(74, f"{args.output}: {e}")
    except ValueError as e:
        return _fail(65, f"{args.input}: {e}")
    print(f"{args.output}: {r['bytes']} bytes, {len(r['packed'])} tensors packed ({args.recipe}), "
          f"{len(r['f32'])} f32" + (f", {len(r['skipped'])} left out (empty or rank > 8)" if r["skipped"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
