"""The Ray Data pipeline on a few files with 2 local workers: every file's transcript is usm-infer's, a bad file is
a row with its error, and the output is JSON lines."""
import glob
import json
import os
import shutil
import subprocess

import pytest

ray = pytest.importorskip("ray", reason="the batch pipeline needs ray[data] (pip)")
usm_infer = pytest.importorskip("usm_infer")
try:
    usm_infer.library_path()
except OSError as e:  # pragma: no cover
    pytest.skip(f"libusm is not built ({e})", allow_module_level=True)
from usm_infer import batch  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "Models", "usm-infer-default.usm")
SAMPLE = os.path.join(ROOT, "Models", "sample.wav")


def test_two_workers_transcribe_a_folder(tmp_path):
    cli = next((p for p in (os.path.join(ROOT, ".build", c, "usm-infer") for c in ("release", "debug")) if os.path.exists(p)), None)
    if cli is None:
        pytest.skip("usm-infer is not built")
    expected = subprocess.run([cli, "--model", MODEL, SAMPLE], check=True, capture_output=True, text=True).stdout.strip()
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    for i in range(3):
        shutil.copy(SAMPLE, audio / f"call{i}.wav")
    shutil.copy(SAMPLE, audio / "sub" / "call3.wav")
    (audio / "broken.wav").write_bytes(b"RIFF nonsense")
    paths = batch.list_inputs(str(audio))
    assert len(paths) == 5
    # loopback only; the workers get this checkout's package and libusm through the runtime environment
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             _node_ip_address="127.0.0.1", runtime_env=batch.runtime_env())
    try:
        summary = batch.transcribe_dataset(paths, str(tmp_path / "out"), MODEL, workers=2, batch_size=2)
    finally:
        ray.shutdown()
    assert summary["files"] == 5 and summary["failures"] == 1
    rows = [json.loads(line) for f in glob.glob(str(tmp_path / "out" / "*.json")) for line in open(f) if line.strip()]
    assert len(rows) == 5
    for r in rows:
        if r["path"].endswith("broken.wav"):
            assert r["status"] == 65 and r["error"]
        else:
            assert r["text"] == expected and r["status"] == 0 and json.loads(r["words"])


def test_manifest(tmp_path):
    m = tmp_path / "list.txt"
    m.write_text("a.wav\n\n/abs/b.flac\n" + json.dumps({"path": "c.mp3"}) + "\n")
    assert batch.list_inputs(str(m)) == [str(tmp_path / "a.wav"), "/abs/b.flac", str(tmp_path / "c.mp3")]
