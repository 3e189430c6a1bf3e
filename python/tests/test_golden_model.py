"""The checked-in executor goldens (Tests/USMModelTests/Golden) are what the reference model produces now."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="regenerating the model goldens needs torch")
container = pytest.importorskip("usm_ref.container", reason="needs the xxhash and zstandard packages")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_model_goldens_regenerate(tmp_path):
    """Packed weights regenerate bit for bit (seeded weights, the container's quantizer); f32 tensors, which hold
    activations computed by torch, within 1e-5 of their largest magnitude (torch versions round convolutions
    differently in the last bit)."""
    import numpy as np

    script = os.path.join(ROOT, "python", "scripts", "make_golden_model.py")
    subprocess.run([sys.executable, script, str(tmp_path)], check=True, capture_output=True)
    golden = os.path.join(ROOT, "Tests", "USMModelTests", "Golden")
    for name in sorted(os.listdir(tmp_path)):
        _, fresh = container.read(str(tmp_path / name))
        _, kept = container.read(os.path.join(golden, name))
        assert list(fresh) == list(kept), name
        for t in kept:
            if kept[t].layout.scheme != "f32":
                assert fresh[t].payload == kept[t].payload, (name, t)
                continue
            a = np.frombuffer(fresh[t].payload, dtype="<f4")
            b = np.frombuffer(kept[t].payload, dtype="<f4")
            scale = max(float(np.abs(b).max()), 1e-30)
            assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5 * scale, (name, t, float(np.abs(a - b).max()), scale)
