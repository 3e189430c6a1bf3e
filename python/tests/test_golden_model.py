"""The checked-in executor goldens (Tests/USMModelTests/Golden) are what the reference model produces now."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="regenerating the model goldens needs torch")
container = pytest.importorskip("usm_ref.container", reason="needs the xxhash and zstandard packages")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_model_goldens_regenerate_identically(tmp_path):
    script = os.path.join(ROOT, "python", "scripts", "make_golden_model.py")
    subprocess.run([sys.executable, script, str(tmp_path)], check=True, capture_output=True)
    golden = os.path.join(ROOT, "Tests", "USMModelTests", "Golden")
    for name in sorted(os.listdir(tmp_path)):
        _, fresh = container.read(str(tmp_path / name))
        _, kept = container.read(os.path.join(golden, name))
        assert list(fresh) == list(kept), name
        for t in kept:
            assert fresh[t].payload == kept[t].payload, (name, t)
