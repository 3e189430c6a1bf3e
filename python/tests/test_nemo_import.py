"""The NeMo importer and the numpy reference against goldens made by NeMo itself (Tests/Fixtures/NeMo/).

Runs without NeMo: reads only the checked-in .nemo archives, their goldens and clips. The importer needs pyyaml;
it uses torch.load for model_weights.ckpt when torch is installed and its own restricted zip reader otherwise (both
are compared when torch is there). Tests skip with a reason when what they need is absent.
Regenerate the fixtures with python/scripts/nemo_fixtures.py (needs NeMo, see python/scripts/nemo_env.sh).
"""
import io
import json
import os
import tarfile
import wave

import numpy as np
import pytest

from usm_ref import container
from usm_ref.nemo import import_nemo as imp

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "NeMo")
MODELS = ["fastconformer-rnnt", "fastconformer-tdt", "conformer-rnnt", "fastconformer-hybrid"]
TYPES = {"fastconformer-rnnt": "nemo-fastconformer-rnnt", "fastconformer-tdt": "nemo-fastconformer-tdt",
         "conformer-rnnt": "nemo-conformer-rnnt", "fastconformer-hybrid": "nemo-fastconformer-rnnt-hybrid-ctc"}

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False
try:
    import yaml  # noqa: F401
    HAVE_YAML = True
except ImportError:
    HAVE_YAML = False

needs_yaml = pytest.mark.skipif(not HAVE_YAML, reason="reading model_config.yaml needs pyyaml")
needs_torch = pytest.mark.skipif(not (HAVE_TORCH and HAVE_YAML), reason="compares against torch (not installed)")


def rel_err(a, b):
    """max |a - b| / max |b|: the tolerance measure of the brief (encoder within 1e-4)."""
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(float(np.abs(b).max()), 1e-30))


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / np.float32(32768.0)


def golden(name):
    meta, packed = container.read(os.path.join(FIX, f"{name}.golden.usm"))
    return meta["golden"], {k: v.dequantize() for k, v in packed.items()}


def ids(a):
    return [int(v) for v in np.asarray(a).reshape(-1) if v >= 0]


class _Lazy(dict):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        self[key] = v = self.make(key)
        return v


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if not HAVE_YAML:
        pytest.skip("the importer needs pyyaml")
    from usm_ref.nemo.reference import NemoModel
    d = tmp_path_factory.mktemp("nemo")

    def make(n):
        path = str(d / f"{n}.usm")
        imp.import_nemo(os.path.join(FIX, f"{n}.nemo"), path)
        return NemoModel.load(path)
    return _Lazy(make)


@pytest.fixture(scope="module")
def runs(imported):
    """Reference outputs per model and clip: features, subsampling, encoder (end to end from the WAV)."""
    def make(n):
        m = imported[n]
        g, gt = golden(n)
        out = []
        for ci, clip in enumerate(g["clips"]):
            x = read_wav(os.path.join(FIX, clip["wav"]))
            f = m.features(x)
            s = m.subsample(f)
            out.append({"features": f, "sub": s, "enc": m.encode(s),
                        "enc_from_golden": m.encode(gt[f"clip{ci}.pre_encode"])})
        return out
    return _Lazy(make)


def test_fixtures_present_and_small():
    total = 0
    for n in MODELS:
        for suffix in (".nemo", ".golden.usm"):
            p = os.path.join(FIX, n + suffix)
            assert os.path.exists(p), p
            total += os.path.getsize(p)
        assert os.path.getsize(os.path.join(FIX, n + ".nemo")) <= 2 * 1024 * 1024
    total += sum(os.path.getsize(os.path.join(FIX, f)) for f in os.listdir(FIX) if f.endswith(".wav"))
    assert total <= 9 * 1024 * 1024


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_checked_in_imports_are_the_importers_output(imported, name):
    """Tests/Fixtures/NeMo/<name>.usm (what the Swift parity tests load) is what the importer makes of <name>.nemo."""
    meta, packed = container.read(os.path.join(FIX, f"{name}.usm"))
    fresh = imported[name]
    assert meta["architecture"] == fresh.meta["architecture"]
    assert meta["tokenizer"] == fresh.meta["tokenizer"]
    assert sorted(packed) == sorted(fresh.t)
    for k, v in packed.items():
        assert np.array_equal(v.dequantize().astype(np.float32), fresh.t[k]), k


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_import_metadata(imported, name):
    m = imported[name]
    a, tok = m.arch, m.tok
    assert a["type"] == TYPES[name]
    assert a["blank_id"] == a["vocab_size"] == 128
    assert tok["blank_id"] == a["blank_id"] and len(tok["pieces"]) == a["vocab_size"] + 1
    assert tok["pieces"][-1] == "<blank>" and tok["unk_id"] == 0
    # the pieces parsed from the SentencePiece model are NeMo's vocabulary
    assert tok["pieces"][:-1] == a["nemo_config"]["joint"]["vocabulary"]
    assert a["joint"]["num_classes"] == a["vocab_size"] + 1 + len(a["durations"])
    assert m.t["joint.out.weight"].shape[0] == a["joint"]["num_classes"]
    if name == "fastconformer-tdt":
        assert a["tdt"] and a["durations"] == [0, 1, 2, 3, 4]
        assert a["encoder"]["att_context_size"] == [24, 6] and a["preprocessor"]["features"] == 128
    if name == "conformer-rnnt":
        e = a["encoder"]
        assert (e["subsampling"], e["subsampling_factor"], e["conv_norm_type"], e["xscaling"]) == \
            ("striding", 4, "layer_norm", False)
        assert "encoder.layers.0.conv.dw_norm.scale" in m.t
    if name.startswith("fastconformer"):
        assert a["encoder"]["subsampling"] == "dw_striding" and a["encoder"]["subsampling_factor"] == 8
        assert a["encoder"]["xscaling"] and a["encoder"]["conv_norm_type"] == "batch_norm"
    if name == "fastconformer-hybrid":
        assert a["ctc"]["blank_id"] == 128 and m.t["ctc.weight"].shape == (129, a["encoder"]["d_model"])
        assert a["preprocessor"]["log_zero_guard_type"] == "clamp"
    # every checkpoint tensor (but BatchNorm's counter) is named in the mapping
    names = [e["name"] for e in m.meta["nemo_mapping"]]
    assert len(names) == len(set(names)) == len(m.t)


@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_batch_norm_fold_and_lstm_bias(name):
    sd = imp.read_weights(os.path.join(FIX, f"{name}.nemo"))
    cfg = imp.read_config(os.path.join(FIX, f"{name}.nemo"))
    arch = imp.resolve(cfg, [])
    t, _ = imp.convert(arch, sd)
    b = sd["decoder.prediction.dec_rnn.lstm.bias_ih_l0"] + sd["decoder.prediction.dec_rnn.lstm.bias_hh_l0"]
    np.testing.assert_allclose(t["predictor.lstm.0.bias"], b, rtol=1e-6, atol=1e-7)
    w = np.concatenate([sd["decoder.prediction.dec_rnn.lstm.weight_ih_l0"],
                        sd["decoder.prediction.dec_rnn.lstm.weight_hh_l0"]], 1)
    np.testing.assert_array_equal(t["predictor.lstm.0.weight"], w)
    if arch["encoder"]["conv_norm_type"] != "batch_norm":
        return
    c = "encoder.layers.1.conv."
    x = np.random.default_rng(0).standard_normal((50, arch["encoder"]["d_model"])).astype(np.float32)
    K = arch["encoder"]["conv_kernel_size"]
    tt = torch.nn.functional.conv1d(torch.from_numpy(x.T[None]), torch.from_numpy(sd[c + "depthwise_conv.weight"]),
                                    torch.from_numpy(sd[c + "depthwise_conv.bias"]), padding=(K - 1) // 2,
                                    groups=x.shape[1])
    bn = torch.nn.functional.batch_norm(tt, torch.from_numpy(sd[c + "batch_norm.running_mean"]),
                                        torch.from_numpy(sd[c + "batch_norm.running_var"]),
                                        torch.from_numpy(sd[c + "batch_norm.weight"]),
                                        torch.from_numpy(sd[c + "batch_norm.bias"]), training=False, eps=1e-5)
    folded = torch.nn.functional.conv1d(torch.from_numpy(x.T[None]), torch.from_numpy(t[c + "depthwise.weight"][:, None]),
                                        torch.from_numpy(t[c + "depthwise.bias"]), padding=(K - 1) // 2,
                                        groups=x.shape[1])
    assert rel_err(folded.numpy(), bn.numpy()) < 1e-6


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_filterbank_formula(imported, name):
    from usm_ref.nemo.reference import mel_filterbank_slaney
    m = imported[name]
    p = m.pre
    fb = mel_filterbank_slaney(p["sample_rate"], p["n_fft"], p["features"], p["lowfreq"], p["highfreq"])
    np.testing.assert_allclose(fb, m.t["preprocessor.filterbank"], rtol=1e-5, atol=1e-8)
    win = m.t["preprocessor.window"]
    k = np.arange(win.size)
    np.testing.assert_allclose(win, 0.5 - 0.5 * np.cos(2 * np.pi * k / (win.size - 1)), atol=1e-6)  # symmetric


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_features(runs, name):
    g, gt = golden(name)
    for ci, r in enumerate(runs[name]):
        ref = gt[f"clip{ci}.features"]
        assert r["features"].shape == ref.shape == (g["clips"][ci]["features_length"], ref.shape[1])
        assert np.abs(r["features"] - ref).max() < 2e-3  # normalized log-mel; torch's FFT is float32


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_subsampling(runs, imported, name):
    g, gt = golden(name)
    m = imported[name]
    for ci, r in enumerate(runs[name]):
        ref = gt[f"clip{ci}.pre_encode"]
        assert r["sub"].shape == ref.shape
        assert ref.shape[0] == g["clips"][ci]["encoder_length"] == \
            m.subsampled_length(g["clips"][ci]["features_length"], m.enc["subsampling_layers"])
        assert rel_err(m.subsample(gt[f"clip{ci}.features"]), ref) < 1e-5  # from NeMo's own features
        assert rel_err(r["sub"], ref) < 1e-4                               # end to end from the WAV


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_encoder(runs, name):
    g, gt = golden(name)
    for ci, r in enumerate(runs[name]):
        ref = gt[f"clip{ci}.encoder"]
        assert r["enc"].shape == ref.shape
        assert rel_err(r["enc_from_golden"], ref) < 1e-5
        assert rel_err(r["enc"], ref) < 1e-4


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_joint0(imported, name):
    m = imported[name]
    g, gt = golden(name)
    pred, _ = m.predictor_start()
    logits = m.joint(gt["clip0.encoder"][0].astype(np.float64), pred)
    logp = logits - logits.max()
    logp = logp - np.log(np.exp(logp).sum())  # NeMo on CPU: log_softmax over every output
    assert rel_err(logp, gt["clip0.joint0"]) < 1e-5


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_greedy_tokens(runs, imported, name):
    m = imported[name]
    g, gt = golden(name)
    for ci, (clip, r) in enumerate(zip(g["clips"], runs[name])):
        for enc in (gt[f"clip{ci}.encoder"], r["enc"]):
            hyp = m.greedy(enc)
            assert hyp["tokens"] == clip["tokens"] == ids(gt[f"clip{ci}.tokens"])
            assert hyp["frames"] == clip["token_frames"]
            if m.arch["tdt"]:
                assert hyp["durations"] == clip["token_durations"]
        assert m.detokenize(clip["tokens"]) == clip["text"].strip()


@needs_yaml
@pytest.mark.parametrize("name", MODELS)
def test_greedy_probe(imported, name):
    """NeMo's greedy search on a seeded random encoder output (scaled until it emits): tokens, frames, TDT
    durations and the hybrid CTC head, against the reference's loop."""
    m = imported[name]
    g, gt = golden(name)
    probe = g["probe"]
    assert len(probe["tokens"]) >= 12
    hyp = m.greedy(gt["probe.encoder"])
    assert hyp["tokens"] == probe["tokens"] == ids(gt["probe.tokens"])
    assert hyp["frames"] == probe["token_frames"]
    if m.arch["tdt"]:
        assert hyp["durations"] == probe["token_durations"]
    if "ctc" in m.arch:
        assert m.ctc_greedy(gt["probe.encoder"])[0] == probe["ctc_tokens"]
    assert probe["frame_loop_greedy_equal"]


@needs_yaml
def test_hybrid_ctc(runs, imported):
    m = imported["fastconformer-hybrid"]
    g, gt = golden("fastconformer-hybrid")
    for ci, (clip, r) in enumerate(zip(g["clips"], runs["fastconformer-hybrid"])):
        toks, logp = m.ctc_greedy(gt[f"clip{ci}.encoder"])
        assert rel_err(logp, gt[f"clip{ci}.ctc_logprobs"]) < 1e-5
        assert toks == clip["ctc_tokens"]
        assert m.ctc_greedy(r["enc"])[0] == clip["ctc_tokens"]


def _with_config(src, dst, edit):
    """A copy of the .nemo at src whose model_config.yaml went through edit(cfg)."""
    import yaml
    with tarfile.open(src, "r:*") as tin, tarfile.open(dst, "w") as tout:
        for mem in tin.getmembers():
            data = tin.extractfile(mem).read() if mem.isfile() else None
            if mem.name.endswith("model_config.yaml"):
                cfg = yaml.safe_load(data.decode())
                edit(cfg)
                data = yaml.safe_dump(cfg).encode()
                mem.size = len(data)
            tout.addfile(mem, io.BytesIO(data) if data is not None else None)


REFUSALS = [
    ("ctc-only", lambda c: c.update(target="nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE"),
     "CTC-only"),
    ("att-style", lambda c: c["encoder"].update(att_context_style="chunked_limited"), "att_context_style"),
    ("subsampling", lambda c: c["encoder"].update(subsampling="vggnet"), "encoder.subsampling=vggnet"),
    ("conv-norm", lambda c: c["encoder"].update(conv_norm_type="group_norm2"), "conv_norm_type"),
    ("causal", lambda c: c["encoder"].update(causal_downsampling=True), "causal_downsampling"),
    ("attention", lambda c: c["encoder"].update(self_attention_model="rel_pos_local_attn"), "self_attention_model"),
    ("splicing", lambda c: c["preprocessor"].update(frame_splicing=3), "frame_splicing"),
    ("multiblank", lambda c: c.update(loss={"loss_name": "multiblank_rnnt"}), "multi-blank"),
    ("char", lambda c: c.update(target="nemo.collections.asr.models.rnnt_models.EncDecRNNTModel"), "character"),
]


@needs_yaml
@pytest.mark.parametrize("case,edit,needle", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refuses_unsupported(tmp_path, capsys, case, edit, needle):
    src = os.path.join(FIX, "fastconformer-rnnt.nemo")
    bad = str(tmp_path / f"{case}.nemo")
    _with_config(src, bad, edit)
    rc = imp.main([bad, str(tmp_path / "out.usm")])
    err = capsys.readouterr().err
    assert rc == imp.EX_UNSUPPORTED == 65, err
    assert needle in err
    assert not os.path.exists(tmp_path / "out.usm")


@needs_yaml
def test_stochastic_depth_is_noted(tmp_path, capsys):
    src = os.path.join(FIX, "fastconformer-rnnt.nemo")
    p = str(tmp_path / "sd.nemo")
    _with_config(src, p, lambda c: c["encoder"].update(stochastic_depth_drop_prob=0.1))
    assert imp.main([p, str(tmp_path / "sd.usm")]) == 0
    assert "stochastic_depth_drop_prob" in capsys.readouterr().err
    meta, _ = container.read(str(tmp_path / "sd.usm"))
    assert any("stochastic_depth" in n for n in meta["architecture"]["import_notes"])


@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_torch_free_checkpoint_reader(name):
    a = imp.read_weights(os.path.join(FIX, f"{name}.nemo"), use_torch=True)
    b = imp.read_weights(os.path.join(FIX, f"{name}.nemo"), use_torch=False)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_sentencepiece_parser():
    """The torch-free protobuf walk over the SentencePiece model of a fixture."""
    with tarfile.open(os.path.join(FIX, "fastconformer-rnnt.nemo"), "r:*") as tar:
        m = next(x for x in tar.getmembers() if x.name.endswith("tokenizer.model"))
        pieces = imp.sentencepiece_pieces(tar.extractfile(m).read())
    assert len(pieces) == 128 and pieces[0] == ("<unk>", 0.0, 2) and pieces[1][0] == "\u2581"
    assert all(t == 1 for _, _, t in pieces[1:])
    json.dumps(pieces)
