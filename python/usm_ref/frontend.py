"""Log-mel frontend of Architecture.md section 2.

`log_mel_np` is the numpy reference (float64 internally). `log_mel_torch` is the float32 torch version used for
feature extraction in training; both return the log-mel *before* the per-bin normalisation (step 7), which is
`normalise`.
"""
from __future__ import annotations

import numpy as np

from .config import FrontendConfig


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_matrix(fc: FrontendConfig, sample_rate: int) -> np.ndarray:
    """[fft_size/2 + 1, mel_bins] triangular HTK filterbank without area normalisation (float64)."""
    n_freqs = fc.fft_size // 2 + 1
    freqs = np.arange(n_freqs, dtype=np.float64) * sample_rate / fc.fft_size
    pts = mel_to_hz(np.linspace(hz_to_mel(fc.f_min), hz_to_mel(fc.f_max), fc.mel_bins + 2))
    w = np.zeros((n_freqs, fc.mel_bins), dtype=np.float64)
    for m in range(fc.mel_bins):
        l, c, r = pts[m], pts[m + 1], pts[m + 2]
        up = (freqs - l) / (c - l)
        down = (r - freqs) / (r - c)
        w[:, m] = np.maximum(0.0, np.minimum(up, down))
    return w


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window, w[k] = 0.5 - 0.5 cos(2 pi k / n)."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def num_frames(n_samples: int, fc: FrontendConfig) -> int:
    if n_samples < fc.window_size:
        return 0
    return 1 + (n_samples - fc.window_size) // fc.hop_size


def log_mel_np(x: np.ndarray, fc: FrontendConfig, sample_rate: int = 16000) -> np.ndarray:
    """Mono samples in [-1, 1] -> [frames, mel_bins] float32 log-mel (before normalisation)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.empty_like(x)
    if x.size:
        y[0] = x[0]
        y[1:] = x[1:] - fc.preemphasis * x[:-1]
    n = num_frames(y.size, fc)
    if n == 0:
        return np.zeros((0, fc.mel_bins), dtype=np.float32)
    idx = np.arange(fc.window_size)[None, :] + fc.hop_size * np.arange(n)[:, None]
    frames = y[idx] * hann_window(fc.window_size)[None, :]
    spec = np.fft.rfft(frames, n=fc.fft_size, axis=1)
    mag = np.abs(spec)
    if fc.spectrum == "power":
        mag = mag * mag
    mel = mag @ mel_matrix(fc, sample_rate)
    return np.log(np.maximum(mel, fc.log_floor)).astype(np.float32)


def normalise(v: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((v - mean) / std).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# torch version


class TorchLogMel:
    """Torch implementation of `log_mel_np`; accepts [N] or [B, N] waveforms, returns float32.

    dtype=float64 (default, used for the stored training features) matches the numpy reference to ~1e-9.
    dtype=float32 differs by up to ~1e-3 in log units at near-silent bins (float32 rounding of tiny
    energies; < 3e-5 where log-mel > -5).
    """

    def __init__(self, fc: FrontendConfig, sample_rate: int = 16000, dtype=None):
        import torch

        self.fc = fc
        self.dtype = torch.float64 if dtype is None else dtype
        self.window = torch.tensor(hann_window(fc.window_size), dtype=self.dtype)
        self.mel = torch.tensor(mel_matrix(fc, sample_rate), dtype=self.dtype)

    def __call__(self, x):
        import torch

        fc = self.fc
        squeeze = x.dim() == 1
        if squeeze:
            x = x[None]
        x = x.to(self.dtype)
        y = torch.cat([x[:, :1], x[:, 1:] - fc.preemphasis * x[:, :-1]], dim=1)
        n = num_frames(y.shape[1], fc)
        if n == 0:
            out = y.new_zeros((y.shape[0], 0, fc.mel_bins))
        else:
            frames = y.unfold(1, fc.window_size, fc.hop_size)[:, :n]  # [B, n, window]
            spec = torch.fft.rfft(frames * self.window, n=fc.fft_size, dim=-1)
            mag = spec.abs()
            if fc.spectrum == "power":
                mag = mag * mag
            mel = mag @ self.mel
            out = torch.log(torch.clamp(mel, min=fc.log_floor))
        out = out.to(torch.float32)
        return out[0] if squeeze else out
