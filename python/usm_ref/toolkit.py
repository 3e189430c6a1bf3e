"""Quantize, export and inspect any PyTorch model with the paper's recipes and the container's exact math.

Nothing here knows the project's own model: layers are chosen by name pattern or predicate.

    import torch, torchaudio
    from usm_ref import toolkit
    m = torchaudio.models.Conformer(input_dim=80, num_heads=4, ffn_dim=256, num_layers=4, depthwise_conv_kernel_size=31)
    names = toolkit.quantize_model(m, "exp5", include="conformer_layers.*.ffn*")   # fake-quant QAT (STE)
    ...train...
    toolkit.export_container(m, "conformer-exp5.usm", "exp5", include="conformer_layers.*.ffn*")
    print(toolkit.describe(toolkit.inspect_container("conformer-exp5.usm")))

`quantize_model` wraps the chosen `nn.Linear` modules in `qat.FakeQuantLinear`: the forward pass sees the weight the
container will hold, the backward pass goes straight through to the float weight. `export_container` packs the same
weights with `quant.quantize` (ModelFormat.md section 6, bit-identical to the Swift quantizer) and every other tensor
as f32. The runtime executes only the architectures it has a model type for (Architecture.md, NeMo imports); a
container of another model is for size accounting, inspection and for a loader of its own.

A recipe is a name of recipes.json (`exp5`, `int4`, ...: its encoder scheme, block size and clipping) or an explicit
`SCHEME` / `SCHEME:BLOCK` (`int4:64`, `bin:64`, `int8`).
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import re
from typing import Callable, Iterable, Union

import numpy as np

from . import container, quant
from .recipes import RECIPES, TABLE

Selector = Union[None, str, Iterable[str], Callable[[str, object], bool]]

# recipe names of recipes.json that pack matrices (f32 is every tensor as stored)
KNOWN_SCHEMES = tuple(quant.SCHEMES)


def parse_recipe(recipe: str) -> tuple[str, int, str]:
    """(scheme, block size, clip) of a recipe name or of `SCHEME[:BLOCK]`."""
    entry = next((r for r in TABLE["recipes"] if r["name"] == recipe), None)
    if entry is not None:
        if entry["decoder"] is not None:
            raise ValueError(f"recipe '{recipe}' also packs the project's decoder with its own scheme; for your layers "
                             f"use its encoder recipe and choose the layers with include=")
        if recipe not in RECIPES or RECIPES[recipe][0] == "f32":
            raise ValueError(f"recipe '{recipe}' packs nothing (f32): every tensor would stay as stored")
        return RECIPES[recipe]
    m = re.fullmatch(r"([a-z0-9_]+)(?::(\d+))?", recipe)
    if m and m.group(1) in KNOWN_SCHEMES and m.group(1) != "f32":
        return m.group(1), int(m.group(2) or 0), "none"
    names = ", ".join(sorted(RECIPES))
    raise ValueError(f"unknown recipe '{recipe}': use one of {names}, or SCHEME[:BLOCK] with SCHEME in "
                     f"{', '.join(s for s in KNOWN_SCHEMES if s != 'f32')}")


def _matcher(include: Selector, exclude: Selector, default_all: bool):
    def one(sel, name, obj):
        if sel is None:
            return None
        if callable(sel):
            return bool(sel(name, obj))
        pats = [sel] if isinstance(sel, str) else list(sel)
        return any(fnmatch.fnmatchcase(name, p) for p in pats)

    def chosen(name, obj):
        inc = one(include, name, obj)
        if inc is None:
            inc = default_all
        return inc and not one(exclude, name, obj)
    return chosen


def select_linears(model, include: Selector = None, exclude: Selector = None) -> list[str]:
    """Qualified names of the `nn.Linear` modules of `model` that `include` takes and `exclude` does not. A selector
    is a glob pattern or a list of them, matched against the module's name (`encoder.layers.3.ffn.0`), or a predicate
    `f(name, module) -> bool`; `include=None` takes every Linear. Raises ValueError for a selected Linear whose
    parent uses its weight directly (nn.MultiheadAttention's out_proj)."""
    import torch.nn as nn
    from .qat import FakeQuantLinear

    chosen = _matcher(include, exclude, True)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, FakeQuantLinear)]
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and n and not any(n.startswith(w + ".") for w in wrapped) and chosen(n, m)]
    # nn.MultiheadAttention reads its out_proj's weight tensor itself, so a wrapper there would never run: refuse
    # rather than leave that layer silently in float
    owned = {f"{n}.out_proj" if n else "out_proj" for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)}
    bypassed = [n for n in names if n in owned]
    if bypassed:
        raise ValueError(f"{', '.join(bypassed)}: nn.MultiheadAttention uses this projection's weight directly, so "
                         f"fake quantization would not apply; exclude it (e.g. exclude='*.out_proj')")
    return names


def quantize_model(model, recipe: str, include: Selector = None, exclude: Selector = None,
                   scale_format: str = "int8") -> list[str]:
    """Wraps the chosen Linear layers in fake quantization with a straight-through estimator (in place). Returns
    their names; raises ValueError when the selection is empty (a pattern that matches nothing is a mistake)."""
    scheme, block, clip = parse_recipe(recipe)
    if scale_format not in quant.SCALE_FORMATS:
        raise ValueError(f"unknown scale format '{scale_format}': {', '.join(quant.SCALE_FORMATS)}")
    names = select_linears(model, include, exclude)
    if not names:
        raise ValueError(f"no nn.Linear of {type(model).__name__} matches include={include!r} exclude={exclude!r}")
    wrap_linears(model, names, scheme, block, clip, scale_format)
    return names


def wrap_linears(model, names: list[str], scheme: str, block: int, clip: str, scale_format: str) -> None:
    """Replaces each named nn.Linear of `model` by a FakeQuantLinear around it."""
    from .qat import FakeQuantLinear

    for n in names:
        parent_name, _, child = n.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FakeQuantLinear(getattr(parent, child), scheme, block, scale_format, clip))


def fake_quantized_modules(model) -> list[str]:
    """Names of the FakeQuantLinear modules of `model` (what `quantize_model` wrapped)."""
    from .qat import FakeQuantLinear
    return [n for n, m in model.named_modules() if isinstance(m, FakeQuantLinear)]


def state_dict_of(model) -> dict[str, np.ndarray]:
    """The model's tensors as float32 numpy arrays under their unwrapped names (a FakeQuantLinear's `x.linear.weight`
    is `x.weight`); buffers included."""
    wrapped = set(fake_quantized_modules(model))
    out = {}
    for k, v in model.state_dict().items():
        name = k
        for w in wrapped:
            if k.startswith(w + ".linear."):
                name = w + "." + k[len(w) + len(".linear."):]
                break
        if v.is_floating_point():
            out[name] = v.detach().to("cpu").float().numpy()
    return out


def export_container(model_or_tensors, path: str, recipe: str, include: Selector = None, exclude: Selector = None,
                     scale_format: str = "int8", metadata: dict | None = None, level: int | None = 19) -> dict:
    """Writes a container (ModelFormat.md) of a model (an nn.Module, or a dict name -> array such as a state dict).

    For a module, the packed tensors are the weights of the Linear layers the selectors choose (its FakeQuantLinear
    layers when it has been through `quantize_model` and no selector is given); for a dict, the 2-D floating tensors
    whose *names* the selectors choose (patterns like `encoder.*.weight`, or a predicate f(name, array)). Everything
    else is stored as f32; tensors the container cannot hold (empty, rank above 8) are left out and listed.
    Returns {"path", "bytes", "packed": [...], "f32": [...], "skipped": [...], "values": n}."""
    scheme, block, clip = parse_recipe(recipe)
    if isinstance(model_or_tensors, dict):
        tensors = {k: (v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v))
                   for k, v in model_or_tensors.items()}
        tensors = {k: v for k, v in tensors.items() if np.issubdtype(v.dtype, np.floating)}
        chosen = _matcher(include, exclude, False)
        packed = {k for k, v in tensors.items() if v.ndim == 2 and np.issubdtype(v.dtype, np.floating) and chosen(k, v)}
        source = "tensors"
    else:
        if include is None and exclude is None and fake_quantized_modules(model_or_tensors):
            layers = fake_quantized_modules(model_or_tensors)
        else:
            layers = select_linears(model_or_tensors, include, exclude) + [
                n for n in fake_quantized_modules(model_or_tensors)
                if _matcher(include, exclude, True)(n, model_or_tensors.get_submodule(n))]
        tensors = state_dict_of(model_or_tensors)
        packed = {n + ".weight" for n in layers}
        source = type(model_or_tensors).__module__ + "." + type(model_or_tensors).__qualname__
    if not packed:
        raise ValueError(f"nothing to pack: no tensor matches include={include!r} exclude={exclude!r}")
    out, skipped = {}, []
    for name, v in tensors.items():
        v = np.ascontiguousarray(v, dtype=np.float32)
        if v.size == 0 or v.ndim > 8:
            skipped.append(name)  # the container holds tensors of rank 1-8 with no empty dimension
            continue
        if name in packed:
            out[name] = quant.quantize(v, scheme, block, scale_format, clip)
        else:
            shape = v.shape if v.ndim else (1,)
            out[name] = quant.quantize(v.reshape(shape), "f32")
    # ModelFormat.md section 8; "pytorch-tensors" is a type no runtime loader takes (the file is for inspection,
    # size accounting and loaders of its own)
    meta = {"architecture": {"type": "pytorch-tensors", "source": source},
            "tokenizer": None,
            "quantization": {"recipe": recipe, "scale_format": scale_format, "block_size": block,
                             "tensors": {n: {"scheme": scheme, "block_size": block, "scale_format": scale_format, "clip": clip}
                                         for n in sorted(packed)}},
            "provenance": {"tool": "usm_ref.toolkit", "source": source,
                           "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    meta.update(metadata or {})
    size = container.write(path, out, meta, level=level)
    return {"path": path, "bytes": size, "packed": sorted(packed), "f32": sorted(set(out) - packed),
            "skipped": skipped, "values": int(sum(np.asarray(v).size for v in tensors.values()))}


def inspect_container(path: str) -> dict:
    """Reads and verifies a container: {"metadata", "tensors": [{name, shape, scheme, block_size, scale_format,
    payload_bytes}], "payload_bytes", "values", "bits_per_value"}."""
    meta, tensors = container.read(path)
    rows = []
    for name, t in tensors.items():
        l = t.layout
        rows.append({"name": name, "shape": list(l.shape), "scheme": l.scheme, "block_size": l.block_size,
                     "scale_format": l.scale_format, "payload_bytes": l.payload_length})
    payload = sum(r["payload_bytes"] for r in rows)
    values = sum(int(np.prod(r["shape"])) for r in rows)
    return {"metadata": meta, "tensors": rows, "payload_bytes": payload, "values": values,
            "bits_per_value": 8 * payload / values if values else 0.0}


def describe(info: dict) -> str:
    """A plain-text table of `inspect_container`'s result."""
    arch = info["metadata"].get("architecture", {})
    lines = [f"architecture: {arch.get('type', '?')}" + (f" ({arch['source']})" if "source" in arch else ""),
             f"{len(info['tensors'])} tensors, {info['values']} values, {info['payload_bytes']} payload bytes "
             f"({info['bits_per_value']:.2f} bits per value)"]
    by_scheme: dict[str, list] = {}
    for r in info["tensors"]:
        by_scheme.setdefault(r["scheme"], []).append(r)
    for s, rs in sorted(by_scheme.items()):
        n = sum(int(np.prod(r["shape"])) for r in rs)
        b = sum(r["payload_bytes"] for r in rs)
        lines.append(f"  {s:9s} {len(rs):5d} tensors {n:12d} values {b:12d} bytes ({8 * b / n:.2f} bits per value)")
    for r in info["tensors"]:
        blk = f" block {r['block_size']}" if r["block_size"] else ""
        lines.append(f"  {r['name']}  {'x'.join(map(str, r['shape']))}  {r['scheme']}{blk} {r['scale_format']}"
                     f"  {r['payload_bytes']} bytes")
    return "\n".join(lines)


def recipes() -> list[dict]:
    """The recipes of recipes.json (shared with the Swift runtime's `usm-pack recipes`)."""
    return TABLE["recipes"]
