"""Model config: dataclasses mirroring the `architecture` JSON object of Architecture.md section 1."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass
class FrontendConfig:
    window_size: int = 400
    hop_size: int = 160
    fft_size: int = 512
    mel_bins: int = 80
    f_min: float = 125.0
    f_max: float = 7600.0
    preemphasis: float = 0.97
    window: str = "hann"
    spectrum: str = "magnitude"  # "magnitude" or "power"
    log_floor: float = 1e-5


@dataclass
class SubsamplingConfig:
    channels: int = 32
    layers: int = 2


@dataclass
class EncoderConfig:
    layers: int = 8
    dim: int = 144
    heads: int = 4
    ffn_dim: int = 576
    conv_kernel: int = 5
    left_context: int = 65
    right_context: int = 4
    layer_norm_epsilon: float = 1e-5


@dataclass
class PredictorConfig:
    embed_dim: int = 256
    layers: int = 1
    hidden: int = 320


@dataclass
class JointConfig:
    dim: int = 320


@dataclass
class ModelConfig:
    type: str = "conformer-rnnt"
    sample_rate: int = 16000
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    subsampling: SubsamplingConfig = field(default_factory=SubsamplingConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    vocab_size: int = 256
    blank_id: int = 0
    max_symbols_per_frame: int = 4

    # ---- JSON -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        sub = {
            "frontend": FrontendConfig,
            "subsampling": SubsamplingConfig,
            "encoder": EncoderConfig,
            "predictor": PredictorConfig,
            "joint": JointConfig,
        }
        kw = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                raise KeyError(f"unknown config key {k!r}")
            if k in sub:
                sub_names = {f.name for f in dataclasses.fields(sub[k])}
                unknown = set(v) - sub_names
                if unknown:
                    raise KeyError(f"unknown keys in {k}: {sorted(unknown)}")
                kw[k] = sub[k](**v)
            else:
                kw[k] = v
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    @classmethod
    def from_json(cls, s: str) -> "ModelConfig":
        return cls.from_dict(json.loads(s))

    @classmethod
    def load(cls, path: str) -> "ModelConfig":
        with open(path) as f:
            return cls.from_json(f.read())

    def validate(self) -> None:
        e = self.encoder
        assert self.type == "conformer-rnnt", self.type
        assert e.dim % e.heads == 0, "dim must be divisible by heads"
        assert e.dim % 2 == 0, "dim must be even (sinusoid [sin, cos] halves)"
        assert e.conv_kernel % 2 == 1, "conv_kernel must be odd"
        assert e.left_context >= 1 and e.right_context >= 0
        assert self.frontend.spectrum in ("magnitude", "power")
        assert self.frontend.window == "hann"
        assert self.frontend.fft_size >= self.frontend.window_size
        assert 0 <= self.blank_id < self.vocab_size

    # ---- derived sizes ----------------------------------------------------------------------------------
    @property
    def sub_freq(self) -> int:
        """F' = mel_bins after `layers` ceil-halvings."""
        f = self.frontend.mel_bins
        for _ in range(self.subsampling.layers):
            f = (f + 1) // 2
        return f

    @property
    def head_dim(self) -> int:
        return self.encoder.dim // self.encoder.heads


def named_config(name: str) -> ModelConfig:
    """Named configs of Architecture.md section 1 (`usm-1b`, `small`, `trained`) and the issue-23 `real` (and
    the measured-but-not-chosen `real-l`)."""
    if name == "trained":
        cfg = ModelConfig()
    elif name == "small":
        cfg = ModelConfig(
            frontend=FrontendConfig(mel_bins=80),
            subsampling=SubsamplingConfig(channels=8, layers=2),
            encoder=EncoderConfig(layers=2, dim=64, heads=4, ffn_dim=256, conv_kernel=5,
                                  left_context=17, right_context=4),
            predictor=PredictorConfig(embed_dim=32, layers=1, hidden=64),
            joint=JointConfig(dim=64),
            vocab_size=64,
        )
    elif name == "real":
        # issue 23: the model trained on real + varied synthetic speech (python/scripts/train_real.sh); same
        # family as `trained`, wider and deeper (dims measured with scripts/bench_step.py, docs/data/PROVENANCE.md)
        cfg = ModelConfig(
            # look-ahead 10 * (3 + 2) frames of 40 ms = 2.0 s (trained: 1.92 s); a wider conv kernel would add
            # (kernel - 1) / 2 frames per layer (the depthwise conv is symmetric, Architecture.md section 3)
            encoder=EncoderConfig(layers=10, dim=192, heads=4, ffn_dim=768, conv_kernel=5,
                                  left_context=65, right_context=3),
            predictor=PredictorConfig(embed_dim=256, layers=1, hidden=320),
            joint=JointConfig(dim=320),
        )
    elif name == "real-l":
        # the larger candidate measured for issue 23 (not chosen: see docs/data/PROVENANCE.md)
        cfg = ModelConfig(
            encoder=EncoderConfig(layers=12, dim=256, heads=4, ffn_dim=1024, conv_kernel=5,
                                  left_context=65, right_context=2),
            predictor=PredictorConfig(embed_dim=256, layers=1, hidden=512),
            joint=JointConfig(dim=384),
        )
    elif name == "usm-1b":
        cfg = ModelConfig(
            frontend=FrontendConfig(mel_bins=128),
            subsampling=SubsamplingConfig(channels=32, layers=2),
            encoder=EncoderConfig(layers=16, dim=1536, heads=12, ffn_dim=6144, conv_kernel=5,
                                  left_context=129, right_context=128),
            predictor=PredictorConfig(embed_dim=640, layers=3, hidden=640),
            joint=JointConfig(dim=640),
            vocab_size=16384,
        )
    else:
        raise KeyError(name)
    cfg.validate()
    return cfg


NAMED_CONFIGS = ("small", "trained", "real", "real-l", "usm-1b")
