"""numpy-only tests of the quantizer and container (ModelFormat.md); they run in CI on every build."""
import os
import subprocess
import sys

import numpy as np
import pytest

from usm_ref import quant

container = pytest.importorskip("usm_ref.container", reason="needs the xxhash and zstandard packages")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_absmean_binarization_hand_case():
    t = quant.quantize(np.array([[1, -2, 5.5, 0]], np.float32), "bin")
    assert t.codes().tolist() == [[1, -1, 1, 1]]
    assert t.scales().tolist() == [[2.125]]


def test_int2_asymmetric_hand_case():
    t = quant.quantize(np.array([[-1, 0, 0.5, 2]], np.float32), "int2")
    assert t.codes().tolist() == [[0, 1, 2, 3]]
    assert t.scales().tolist() == [[1.0]] and t.zero_points().tolist() == [[1.0]]
    assert t.dequantize().tolist() == [[-1, 0, 1, 2]]


def test_int4_round_half_even_and_nibble_order():
    t = quant.quantize(np.array([[1, -1, 7, -7]], np.float32), "int4")
    assert t.part("codes")[:2] == bytes([0xF1, 0x97])
    t = quant.quantize(np.array([[1, -2, 3.5, 7, 2.5, -0.5]], np.float32), "int4")
    assert t.codes().tolist() == [[1, -2, 4, 7, 2, 0]]


def test_worked_layout_example():
    parts = quant.Layout((3, 100), "int2", 64, "int8").parts()
    assert parts["codes"] == (0, 96) and parts["scales"] == (128, 6) and parts["scale_factors"] == (192, 4)
    assert parts["zero_points"] == (256, 6) and parts["zero_point_factors"] == (320, 4) and parts["_end"] == 324


@pytest.mark.parametrize("scheme", ["int8", "int4", "int2", "bin", "bin_norm", "bin_asym"])
@pytest.mark.parametrize("block,fmt", [(0, "f32"), (64, "int8"), (8, "int8-row")])
def test_pack_unpack_round_trip_and_error_bound(scheme, block, fmt):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 100)).astype(np.float32)
    t = quant.quantize(w, scheme, block, fmt)
    q = t.codes()
    lo, hi = quant.CODE_RANGE[scheme]
    if scheme in ("bin", "bin_norm"):
        assert set(np.unique(q)) <= {-1, 1}
    else:
        assert q.min() >= lo and q.max() <= hi
    # re-packing the decoded codes gives the same bytes
    stored = (q + 1) // 2 if scheme in ("bin", "bin_norm") else q
    assert quant.pack_codes(stored, t.layout).tobytes() == t.part("codes")
    dq = t.dequantize()
    if scheme in ("int8", "int4", "int2") and fmt == "f32":
        s = np.repeat(t.scales(), t.layout.block_length, axis=1)[:, :100]
        assert np.all(np.abs(w - dq) <= s / 2 + 1e-5)


def test_container_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    tensors = {
        "a": quant.quantize(rng.standard_normal((4, 70)).astype(np.float32), "bin", 64, "int8"),
        "b": quant.quantize(np.zeros((2, 3, 4), np.float32), "f32"),
        "c": quant.quantize(rng.standard_normal((2, 9)).astype(np.float32), "int2", 8, "int8-row"),
    }
    path = str(tmp_path / "m.usm")
    container.write(path, tensors, {"architecture": {"type": "x"}})
    meta, back = container.read(path)
    assert meta["format"] == "usm-infer" and meta["architecture"] == {"type": "x"}
    for name, t in tensors.items():
        assert back[name].payload == t.payload and back[name].layout == t.layout
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0xFF
    open(path, "wb").write(data)
    with pytest.raises(container.ContainerError):
        container.read(path)


def test_golden_file_is_what_the_script_writes(tmp_path):
    """The checked-in golden container is regenerable and unchanged by the current quantizer."""
    golden = os.path.join(ROOT, "Tests", "USMFormatTests", "Golden", "python-quant.usm")
    _, expected = container.read(golden)
    script = os.path.join(ROOT, "python", "scripts", "make_golden_quant.py")
    backup = open(golden, "rb").read()
    try:
        subprocess.run([sys.executable, script], check=True, capture_output=True)
        _, regenerated = container.read(golden)
    finally:
        open(golden, "wb").write(backup)
    assert list(regenerated) == list(expected)
    for name in expected:
        assert regenerated[name].payload == expected[name].payload, name
