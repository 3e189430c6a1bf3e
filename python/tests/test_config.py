import json

import pytest

from usm_ref.config import NAMED_CONFIGS, ModelConfig, named_config

ARCH_JSON = """
{
  "type": "conformer-rnnt",
  "sample_rate": 16000,
  "frontend": {
    "window_size": 400, "hop_size": 160, "fft_size": 512,
    "mel_bins": 80, "f_min": 125.0, "f_max": 7600.0,
    "preemphasis": 0.97, "window": "hann", "spectrum": "magnitude",
    "log_floor": 1e-5
  },
  "subsampling": { "channels": 32, "layers": 2 },
  "encoder": {
    "layers": 8, "dim": 144, "heads": 4, "ffn_dim": 576, "conv_kernel": 5,
    "left_context": 65, "right_context": 4, "layer_norm_epsilon": 1e-5
  },
  "predictor": { "embed_dim": 256, "layers": 1, "hidden": 320 },
  "joint": { "dim": 320 },
  "vocab_size": 256,
  "blank_id": 0,
  "max_symbols_per_frame": 4
}
"""


def test_trained_config_is_the_architecture_json():
    cfg = ModelConfig.from_json(ARCH_JSON)
    assert cfg == named_config("trained")
    assert json.loads(cfg.to_json()) == json.loads(ARCH_JSON)


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_roundtrip(name, tmp_path):
    cfg = named_config(name)
    p = tmp_path / "c.json"
    cfg.save(str(p))
    assert ModelConfig.load(str(p)) == cfg


def test_table_values():
    s = named_config("small")
    assert (s.frontend.mel_bins, s.subsampling.channels, s.encoder.layers, s.encoder.dim, s.encoder.heads,
            s.encoder.ffn_dim, s.encoder.conv_kernel, s.encoder.left_context, s.encoder.right_context,
            s.predictor.embed_dim, s.predictor.layers, s.predictor.hidden, s.joint.dim, s.vocab_size) == \
        (80, 8, 2, 64, 4, 256, 5, 17, 4, 32, 1, 64, 64, 64)
    b = named_config("usm-1b")
    assert (b.frontend.mel_bins, b.encoder.layers, b.encoder.dim, b.encoder.heads, b.encoder.ffn_dim,
            b.encoder.left_context, b.encoder.right_context, b.predictor.layers, b.predictor.hidden,
            b.vocab_size) == (128, 16, 1536, 12, 6144, 129, 128, 3, 640, 16384)


def test_unknown_key_rejected():
    d = named_config("small").to_dict()
    d["encoder"]["bogus"] = 1
    with pytest.raises(KeyError):
        ModelConfig.from_dict(d)


def test_sub_freq():
    assert named_config("trained").sub_freq == 20
    assert named_config("usm-1b").sub_freq == 32
