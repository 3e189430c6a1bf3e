"""The user toolkit (usm_ref.toolkit, usm-quant) on models and tensors the package was not written for: a torchaudio
Conformer (QAT by name pattern and by predicate, export, inspect) and a plain .npz of tensors (no torch)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from usm_ref import container, quant, toolkit

torch = None  # imported by conformer() where available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "usm_ref.cli", *args], capture_output=True, text=True,
                          cwd=os.path.join(ROOT, "python"))


def test_recipes_resolve_to_schemes():
    assert toolkit.parse_recipe("exp5") == ("bin", 64, "none")
    assert toolkit.parse_recipe("int4:64") == ("int4", 64, "none")
    assert toolkit.parse_recipe("int8") == ("int8", 0, "none")
    for bad in ("f32", "int3", "int4:x", "exp99"):
        with pytest.raises(ValueError, match="unknown recipe"):
            toolkit.parse_recipe(bad)
    with pytest.raises(ValueError, match="packs nothing"):
        toolkit.parse_recipe("exp0")
    with pytest.raises(ValueError, match="decoder"):
        toolkit.parse_recipe("exp5-dec8")


def test_console_script_is_declared():
    import importlib
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads pyproject.toml")

    with open(os.path.join(ROOT, "python", "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    target = project["project"]["scripts"]["usm-quant"]
    module, _, func = target.partition(":")
    assert callable(getattr(importlib.import_module(module), func))
    packages = project["tool"]["setuptools"]["packages"]
    assert {"usm_ref", "usm_ref.nemo", "usm_infer"} <= set(packages)


def test_pack_npz_without_torch(tmp_path):
    rng = np.random.default_rng(5)
    tensors = {"enc.0.ff.weight": rng.standard_normal((96, 128)).astype(np.float32),
               "enc.0.ff.bias": rng.standard_normal(96).astype(np.float32),
               "enc.1.ff.weight": rng.standard_normal((64, 96)).astype(np.float32),
               "head.weight": rng.standard_normal((10, 64)).astype(np.float32),
               "steps": np.array(7, dtype=np.int64)}
    src = tmp_path / "w.npz"
    np.savez(src, **tensors)
    out = tmp_path / "w.usm"
    r = run_cli("pack", str(src), str(out), "--recipe", "int4:32", "--include", "enc.*.weight", "--scale-format", "f32")
    assert r.returncode == 0, r.stderr
    assert "2 tensors packed" in r.stdout
    meta, got = container.read(str(out))
    assert meta["architecture"]["type"] == "pytorch-tensors"
    assert sorted(meta["quantization"]["tensors"]) == ["enc.0.ff.weight", "enc.1.ff.weight"]
    assert meta["quantization"]["tensors"]["enc.1.ff.weight"] == {"scheme": "int4", "block_size": 32, "scale_format": "f32",
                                                                 "clip": "none"}
    assert set(got) == {"enc.0.ff.weight", "enc.0.ff.bias", "enc.1.ff.weight", "head.weight"}  # integers left out
    for name in ("enc.0.ff.weight", "enc.1.ff.weight"):
        assert got[name].layout.scheme == "int4" and got[name].layout.block_size == 32
        # the container's exact math: the same bytes as the reference quantizer
        assert got[name].payload == quant.quantize(tensors[name], "int4", 32, "f32").payload
    np.testing.assert_array_equal(got["head.weight"].dequantize(), tensors["head.weight"])
    info = run_cli("inspect", str(out), "--json")
    assert info.returncode == 0, info.stderr
    d = json.loads(info.stdout)
    assert {t["name"]: t["scheme"] for t in d["tensors"]}["enc.1.ff.weight"] == "int4"
    # a pattern that matches nothing, a bad recipe, a missing input, a broken container: typed exit codes
    assert run_cli("pack", str(src), str(out), "--recipe", "int4", "--include", "nothing.*").returncode == 65
    assert run_cli("pack", str(src), str(out), "--recipe", "int3", "--include", "enc.*").returncode == 64
    assert run_cli("pack", str(tmp_path / "missing.npz"), str(out), "--recipe", "int4", "--include", "x").returncode == 66
    broken = tmp_path / "broken.usm"
    data = bytearray(out.read_bytes())
    data[-1] ^= 0xFF
    broken.write_bytes(bytes(data))
    r = run_cli("inspect", str(broken))
    assert r.returncode == 65 and "checksum" in r.stderr


def test_swift_inspect_reads_an_exported_container(tmp_path):
    pack = next((p for p in (os.path.join(ROOT, ".build", c, "usm-pack") for c in ("release", "debug"))
                 if os.path.exists(p)), None)
    if pack is None:
        pytest.skip("usm-pack is not built (swift build --product usm-pack)")
    rng = np.random.default_rng(1)
    w = {"a.weight": rng.standard_normal((32, 64)).astype(np.float32), "a.bias": np.zeros(32, np.float32)}
    out = str(tmp_path / "t.usm")
    toolkit.export_container(w, out, "exp5", include="*.weight")
    r = subprocess.run([pack, "inspect", out, "--tensors"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "a.weight" in r.stdout and "bin" in r.stdout


def conformer():
    """torchaudio's Conformer (skips the calling test, not the module, without torch and torchaudio)."""
    global torch
    torch = pytest.importorskip("torch", reason="QAT needs torch")
    torchaudio = pytest.importorskip("torchaudio", reason="the foreign model is torchaudio's Conformer")
    torch.manual_seed(0)
    return torchaudio.models.Conformer(input_dim=64, num_heads=4, ffn_dim=128, num_layers=2,
                                       depthwise_conv_kernel_size=7, dropout=0.0)


def test_qat_on_a_torchaudio_conformer_by_pattern(tmp_path):
    m = conformer()
    ffn = [n for n, x in m.named_modules() if isinstance(x, torch.nn.Linear) and ".ffn" in n]
    assert len(ffn) == 2 * 2 * 2  # 2 layers x 2 FFN modules x 2 linears
    float_weights = {n: m.get_submodule(n).weight.detach().clone() for n in ffn}
    names = toolkit.quantize_model(m, "exp5", include="conformer_layers.*.ffn*")
    assert sorted(names) == sorted(ffn)
    assert sorted(toolkit.fake_quantized_modules(m)) == sorted(ffn)
    # the forward pass sees the container's weights; gradients reach the float weights (straight-through)
    x = torch.randn(2, 20, 64)
    lengths = torch.tensor([20, 15])
    y, _ = m(x, lengths)
    y.square().mean().backward()
    for n in ffn:
        lin = m.get_submodule(n)
        assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all() and lin.weight.grad.abs().sum() > 0
        exact = quant.quantize(float_weights[n].numpy(), "bin", 64, "int8").dequantize()
        h = torch.randn(3, lin.weight.shape[1])
        ref = torch.nn.functional.linear(h, torch.from_numpy(exact), lin.bias)
        torch.testing.assert_close(lin(h), ref, rtol=1e-5, atol=1e-5)
    # a training step changes the float weights; the export packs them with the same math
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    out = str(tmp_path / "conformer-exp5.usm")
    r = toolkit.export_container(m, out, "exp5")
    assert r["packed"] == sorted(n + ".weight" for n in ffn)
    meta, got = container.read(out)
    sd = m.state_dict()
    for n in ffn:
        w = sd[n + ".linear.weight"].numpy()
        assert got[n + ".weight"].payload == quant.quantize(w, "bin", 64, "int8").payload
    for k, v in toolkit.state_dict_of(m).items():
        if k not in r["packed"]:
            np.testing.assert_array_equal(got[k].dequantize().reshape(v.shape), v)
    info = toolkit.inspect_container(out)
    assert info["metadata"]["architecture"]["source"].endswith("Conformer")
    assert "bin" in toolkit.describe(info)
    # the packed model is smaller than f32 by what its packed share allows
    f32 = sum(int(np.prod(t["shape"])) for t in info["tensors"]) * 4
    assert info["payload_bytes"] < f32


def test_qat_by_predicate_and_exclusion():
    m = conformer()
    # MultiheadAttention reads out_proj.weight itself: wrapping it would silently stay float, so it is refused
    with pytest.raises(ValueError, match="MultiheadAttention"):
        toolkit.quantize_model(m, "int4", include=lambda n, mod: n.endswith("self_attn.out_proj"))
    with pytest.raises(ValueError, match="MultiheadAttention"):
        toolkit.quantize_model(m, "int4")
    ffn1 = toolkit.quantize_model(m, "int4", include=lambda n, mod: ".ffn1." in n and mod.out_features == 128)
    assert len(ffn1) == 2  # the first linear of each layer's first FFN (64 -> 128)
    rest = toolkit.quantize_model(m, "int2:32", include="conformer_layers.*", exclude=["*.ffn2.*", "*.out_proj"])
    assert not set(rest) & set(ffn1)  # wrapped layers are not wrapped twice
    assert all(".ffn2." not in n for n in rest) and any(".ffn1." in n for n in rest)
    with pytest.raises(ValueError, match="no nn.Linear"):
        toolkit.quantize_model(m, "int4", include="decoder.*")
