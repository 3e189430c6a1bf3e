"""python/bench/onnx_peer.py: the .usm -> torch loader, the ONNX export and greedy search over ORT sessions reproduce
the executor goldens (Tests/USMModelTests/Golden/golden-f32.usm for small-f32.usm)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ONNX peer needs torch")
pytest.importorskip("onnxruntime", reason="the ONNX peer needs onnxruntime")
pytest.importorskip("onnx", reason="the ONNX peer needs onnx")
container = pytest.importorskip("usm_ref.container", reason="needs the xxhash and zstandard packages")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
GOLDEN = os.path.join(ROOT, "Tests", "USMModelTests", "Golden")
SCRIPT = os.path.join(ROOT, "python", "bench", "onnx_peer.py")
sys.path.insert(0, os.path.join(ROOT, "python", "bench"))
import onnx_peer  # noqa: E402

from usm_ref.decode import greedy_search  # noqa: E402
from usm_ref.frontend import log_mel_np  # noqa: E402


@pytest.fixture(scope="module")
def golden():
    _, g = container.read(os.path.join(GOLDEN, "golden-f32.usm"))
    return {k: v.dequantize().reshape(v.layout.shape) for k, v in g.items()}


@pytest.fixture(scope="module")
def model():
    cfg, weights, pieces = onnx_peer.read_usm(os.path.join(GOLDEN, "small-f32.usm"))
    return cfg, onnx_peer.load_torch_model(cfg, weights), pieces


@pytest.fixture(scope="module")
def torch_encoder(model, golden):
    cfg, m, _ = model
    feats = log_mel_np(golden["audio"], cfg.frontend, cfg.sample_rate)
    with torch.no_grad():
        enc, _ = m.encoder(torch.from_numpy(feats)[None], torch.tensor([feats.shape[0]]))
    return feats, enc[0]


@pytest.fixture(scope="module")
def onnx_paths(model, tmp_path_factory):
    _, m, _ = model
    d = str(tmp_path_factory.mktemp("onnx"))
    f32 = onnx_peer.export_onnx(m, d)
    return f32, onnx_peer.quantize_int8(f32, d)


def test_loader_inverts_export(model):
    cfg, m, _ = model
    _, stored = container.read(os.path.join(GOLDEN, "small-f32.usm"))
    again = m.state_dict_for_export()
    assert list(again) == list(stored)
    for k, t in stored.items():
        np.testing.assert_allclose(again[k], t.dequantize().reshape(t.layout.shape), rtol=1e-6, atol=1e-6, err_msg=k)


def test_loader_reproduces_golden_encoder(model, golden, torch_encoder):
    cfg, m, _ = model
    feats, enc = torch_encoder
    normed = (feats - m.encoder.mean.numpy()) / m.encoder.std.numpy()
    np.testing.assert_allclose(normed, golden["features"], atol=1e-4)
    assert enc.shape == golden["encoder"].shape
    assert np.abs(enc.numpy() - golden["encoder"]).max() < 1e-4
    assert greedy_search(m, enc) == golden["tokens"].astype(int).tolist()


def test_ort_f32_matches_torch_and_golden_tokens(model, golden, torch_encoder, onnx_paths):
    cfg, _, _ = model
    feats, enc = torch_encoder
    om = onnx_peer.OrtModel(cfg, onnx_paths[0])
    e = om.encode(feats)  # exported at another length: the time axis is dynamic
    assert e.shape == tuple(enc.shape)
    assert np.abs(e - enc.numpy()).max() < 1e-4
    assert np.abs(e - golden["encoder"]).max() < 1e-4
    tokens = golden["tokens"].astype(int).tolist()
    assert om.greedy(e) == tokens
    # shorter input: T' = ceil(ceil(T/2)/2)
    e_short = om.encode(feats[:50])
    assert e_short.shape == (13, cfg.encoder.dim)


def test_ort_int8_runs_close(model, torch_encoder, onnx_paths):
    cfg, _, _ = model
    feats, enc = torch_encoder
    oq = onnx_peer.OrtModel(cfg, onnx_paths[1])
    e = oq.encode(feats)
    assert e.shape == tuple(enc.shape)
    # dynamic int8 weights and activations: close, not equal (final LayerNorm output, unit scale)
    assert np.abs(e - enc.numpy()).max() < 0.2
    assert all(0 <= k < cfg.vocab_size and k != cfg.blank_id for k in oq.greedy(e))


def test_cli_prints_one_json_document(tmp_path, golden):
    sf = pytest.importorskip("soundfile")
    sf.write(str(tmp_path / "a.wav"), golden["audio"], 16000, subtype="FLOAT")
    # 8 kHz copy exercises resampling
    sf.write(str(tmp_path / "b.wav"), golden["audio"][::2], 8000, subtype="FLOAT")
    (tmp_path / "transcripts.tsv").write_text("id\tseconds\ttranscript\na\t1.37\tp3 p6\nb\t1.37\tp3\n")
    r = subprocess.run([sys.executable, SCRIPT, os.path.join(GOLDEN, "small-f32.usm"), str(tmp_path)],
                       check=True, capture_output=True, text=True)
    doc = json.loads(r.stdout)
    assert [v["name"] for v in doc["variants"]] == ["ort-f32", "ort-int8"]
    assert "numpy" in doc["note"] and doc["onnxruntime"]
    for v in doc["variants"]:
        assert v["utterances"] == 2 and set(v["hypotheses"]) == {"a", "b"}
        assert abs(v["audio_seconds"] - 2 * golden["audio"].size / 16000) < 1e-3
        assert v["compute_seconds"] > 0 and v["rtf"] > 0
    _, _, pieces = onnx_peer.read_usm(os.path.join(GOLDEN, "small-f32.usm"))
    want = onnx_peer.decode_text(golden["tokens"].astype(int).tolist(), pieces)
    assert doc["variants"][0]["hypotheses"]["a"] == want
    r = subprocess.run([sys.executable, SCRIPT, os.path.join(GOLDEN, "small-f32.usm"), str(tmp_path), "--limit", "1"],
                       check=True, capture_output=True, text=True)
    assert list(json.loads(r.stdout)["variants"][0]["hypotheses"]) == ["a"]


def test_cli_skips_packed_models(tmp_path):
    (tmp_path / "transcripts.tsv").write_text("id\tseconds\ttranscript\n")
    r = subprocess.run([sys.executable, SCRIPT, os.path.join(GOLDEN, "small-exp5.usm"), str(tmp_path)],
                       check=True, capture_output=True, text=True)
    assert "f32" in json.loads(r.stdout)["skip"]


def test_cli_dequantizes_packed_models(tmp_path):
    """--dequantize: ORT runs the packed exp5 model's weights at f32 and gives the reference's greedy tokens."""
    sf = pytest.importorskip("soundfile")
    from usm_ref import container
    _, g = container.read(os.path.join(GOLDEN, "golden-exp5.usm"))
    audio = np.asarray(g["audio"].dequantize(), np.float32)
    tokens = np.asarray(g["tokens"].dequantize()).astype(int).tolist()
    sf.write(str(tmp_path / "a.wav"), audio, 16000, subtype="FLOAT")
    (tmp_path / "transcripts.tsv").write_text("id\tseconds\ttranscript\na\t1.37\tp3\n")
    path = os.path.join(GOLDEN, "small-exp5.usm")
    r = subprocess.run([sys.executable, SCRIPT, path, str(tmp_path), "--dequantize"],
                       check=True, capture_output=True, text=True)
    doc = json.loads(r.stdout)
    assert "dequantized" in doc["note"]
    _, _, pieces = onnx_peer.read_usm(path, require_f32=False)
    assert doc["variants"][0]["hypotheses"]["a"] == onnx_peer.decode_text(tokens, pieces)


def test_cli_skips_without_onnxruntime(tmp_path):
    (tmp_path / "transcripts.tsv").write_text("id\tseconds\ttranscript\n")
    hide = ("import sys, runpy; sys.modules['onnxruntime'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", hide, SCRIPT, os.path.join(GOLDEN, "small-f32.usm"), str(tmp_path)],
                       check=True, capture_output=True, text=True)
    assert "onnxruntime" in json.loads(r.stdout)["skip"]
