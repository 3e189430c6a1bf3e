"""Offline waveform augmentation (numpy/scipy, 16 kHz float32 mono), deterministic per seed.

Single effects (each returns float32; those marked "same length" keep the input length):
  speed(x, f)            resampling speed perturbation (tempo and pitch together), length / f
  tempo(x, f)            WSOLA time stretch, pitch kept, length ~ / f
  pitch_shift(x, semis)  resample + WSOLA back, same length
  add_noise(x, n, snr)   scale noise n to the SNR (dB) and add, same length
  white / pink / brown   noise generators;  babble(pool, n, rng)  sum of other utterances
  reverb(x, rir)         convolve with an impulse response (direct-path aligned), same length
  exp_rir(rng, rt60)     simple exponential-decay RIR (fallback when pyroomacoustics is missing)
  room_rirs(n, seed)     bank of simulated shoebox RIRs (pyroomacoustics), exp_rir fallback
  telephone(x)           300-3400 Hz band-pass at 8 kHz and back, optionally mu-law 8 bit, same length
  lowpass(x, fc)         Butterworth low-pass, same length
  mulaw(x)               mu-law 8-bit round trip, same length
  gain(x, db)            gain with clipping at +-1
`augment(x, rng, pool, rirs, strength)` draws a random chain of these (the recipe used for the training shards)
and returns (y, description).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

SR = 16000


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def _ratio(f: float, max_den: int = 100):
    from fractions import Fraction

    fr = Fraction(f).limit_denominator(max_den)
    return fr.numerator, fr.denominator


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Kaldi-style speed perturbation: play `factor` times faster (pitch up, shorter)."""
    if abs(factor - 1.0) < 1e-6:
        return _f32(x).copy()
    up, down = _ratio(1.0 / factor)
    return _f32(signal.resample_poly(x, up, down))


def tempo(x: np.ndarray, factor: float, frame: int = 400, hop: int = 200, search: int = 160) -> np.ndarray:
    """WSOLA time-scale modification: output length ~ len(x) / factor, pitch unchanged."""
    x = _f32(x)
    if abs(factor - 1.0) < 1e-6 or len(x) < 2 * frame:
        return x.copy()
    win = np.hanning(frame).astype(np.float32)
    n_out = int(len(x) / factor)
    n_frames = max(1, (n_out - frame) // hop + 1)
    y = np.zeros(n_frames * hop + frame, np.float32)
    norm = np.zeros_like(y)
    xp = np.pad(x, (search, frame + search + int(n_frames * hop * factor) + hop))
    prev_tail = None
    for k in range(n_frames):
        center = int(round(k * hop * factor)) + search
        if prev_tail is None:
            best = center
        else:
            seg = xp[center - search:center + search + frame]
            # maximise correlation of the candidate's first `frame - hop` samples with the natural continuation
            ref = prev_tail
            c = signal.correlate(seg[:2 * search + len(ref)], ref, mode="valid")
            best = center - search + int(np.argmax(c))
        chunk = xp[best:best + frame]
        y[k * hop:k * hop + frame] += chunk * win
        norm[k * hop:k * hop + frame] += win
        prev_tail = xp[best + hop:best + frame]
    y = y / np.maximum(norm, 1e-3)
    return _fit(y, n_out).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch up by `semitones` keeping the duration (speed change, then WSOLA back to the length)."""
    f = 2.0 ** (semitones / 12.0)
    y = speed(x, f)  # shorter and higher by f
    y = tempo(y, 1.0 / f)
    return _fit(y, len(x)).astype(np.float32)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def _colored(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    m = max(n, 2)
    spec = np.fft.rfft(rng.standard_normal(m))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec = spec / f ** (exponent / 2.0)
    spec[0] = 0.0
    y = np.fft.irfft(spec, m)[:n]
    return (y / (_rms(y) + 1e-12)).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    return _colored(n, rng, 1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    return _colored(n, rng, 2.0)


def babble(pool: list, n: int, rng: np.random.Generator, talkers: tuple = (3, 7)) -> np.ndarray:
    """Sum of 3..6 random excerpts of other utterances (each normalised), looped to length n."""
    y = np.zeros(n, np.float32)
    if not pool:
        return pink(n, rng)
    k = int(rng.integers(talkers[0], talkers[1]))
    for _ in range(k):
        s = _f32(pool[int(rng.integers(len(pool)))])
        if len(s) == 0:
            continue
        reps = int(math.ceil((n + len(s)) / len(s)))
        s = np.tile(s, reps)
        off = int(rng.integers(0, len(s) - n + 1))
        seg = s[off:off + n]
        y += seg / (_rms(seg) + 1e-9)
    return y / (_rms(y) + 1e-9)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    x = _f32(x)
    noise = _fit(_f32(noise), len(x))
    scale = _rms(x) / (_rms(noise) * 10 ** (snr_db / 20.0) + 1e-12)
    return (x + noise * scale).astype(np.float32)


def exp_rir(rng: np.random.Generator, rt60: float, sr: int = SR) -> np.ndarray:
    """Direct impulse + exponentially decaying noise tail (60 dB decay in rt60 seconds)."""
    n = int(sr * min(1.2 * rt60, 1.0)) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    delay = int(rng.integers(int(0.002 * sr), int(0.01 * sr)))
    tail[:delay] = 0
    h = tail * 10 ** (rng.uniform(-12, -3) / 20.0) / (np.sqrt(np.sum(tail ** 2)) + 1e-9)
    h[0] = 1.0
    return h.astype(np.float32)


def room_rirs(n: int, seed: int = 0, sr: int = SR) -> list:
    """`n` RIRs of random shoebox rooms (pyroomacoustics image source method, RT60 0.15-0.9 s); falls back to
    exp_rir when pyroomacoustics is not installed."""
    rng = np.random.default_rng(seed)
    try:
        import pyroomacoustics as pra
    except Exception:  # pragma: no cover - fallback path
        return [exp_rir(rng, float(rng.uniform(0.15, 0.9)), sr) for _ in range(n)]
    out = []
    while len(out) < n:
        dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4.0)])
        rt60 = float(rng.uniform(0.15, 0.9))
        try:
            e_abs, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        max_order = min(max_order, 12)
        room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(e_abs), max_order=max_order)
        src = rng.uniform(0.5, dims - 0.5)
        mic = rng.uniform(0.5, dims - 0.5)
        if np.linalg.norm(src - mic) < 0.5:
            continue
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], np.float64)[: int(sr * 1.0)]
        out.append((h / (np.max(np.abs(h)) + 1e-9)).astype(np.float32))
    return out


def reverb(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve, aligned to the direct path (the RIR's peak), cut to len(x), RMS kept."""
    x = _f32(x)
    peak = int(np.argmax(np.abs(rir)))
    y = signal.fftconvolve(x, rir)[peak:peak + len(x)]
    y = _fit(y, len(x))
    return (y * (_rms(x) / (_rms(y) + 1e-12))).astype(np.float32)


_SOS_CACHE: dict = {}


def _sos(kind: str, freqs, sr: int, order: int = 6):
    key = (kind, tuple(np.atleast_1d(freqs)), sr, order)
    if key not in _SOS_CACHE:
        _SOS_CACHE[key] = signal.butter(order, freqs, btype=kind, fs=sr, output="sos")
    return _SOS_CACHE[key]


def mulaw(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """mu-law 8-bit quantisation round trip (G.711-like), same length."""
    x = np.clip(_f32(x), -1.0, 1.0)
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    q = np.round((c + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


def telephone(x: np.ndarray, codec: bool = True, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    """Narrow-band channel: down to 8 kHz, band-pass lo..hi, optional mu-law, back to 16 kHz; same length."""
    x = _f32(x)
    y = signal.resample_poly(x, 1, 2)
    y = signal.sosfilt(_sos("bandpass", (lo, hi), 8000, 4), y)
    if codec:
        peak = float(np.max(np.abs(y))) + 1e-9
        g = min(1.0, 0.9 / peak)
        y = mulaw(y * g) / g
    y = signal.resample_poly(y, 2, 1)
    return _fit(_f32(y), len(x))


def lowpass(x: np.ndarray, fc: float, sr: int = SR) -> np.ndarray:
    return _f32(signal.sosfilt(_sos("lowpass", fc, sr, 8), _f32(x)))


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(_f32(x) * 10 ** (db / 20.0), -1.0, 1.0).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, pool: list | None = None, rirs: list | None = None,
            strength: float = 1.0):
    """One random augmentation chain (the training-shard recipe). Returns (y, description).

    Order: speed or tempo (p 0.5) -> pitch (p 0.25) -> reverb (p 0.35) -> additive noise (p 0.6; white / pink /
    brown / babble at SNR 0..30 dB) -> channel (p 0.4: telephone 300-3400 Hz, with mu-law half the time, or a
    4-8 kHz low-pass) -> mu-law alone (p 0.1) -> gain -30..0 dB re. peak-normalised (with a rare mild clip)."""
    pool = pool or []
    y = _f32(x)
    desc = []
    p = lambda q: rng.random() < q * strength  # noqa: E731
    if p(0.5):
        f = float(rng.uniform(0.9, 1.1))
        if rng.random() < 0.5:
            y = speed(y, f)
            desc.append(f"speed{f:.2f}")
        else:
            y = tempo(y, f)
            desc.append(f"tempo{f:.2f}")
    if p(0.25):
        s = float(rng.uniform(-3, 3))
        y = pitch_shift(y, s)
        desc.append(f"pitch{s:+.1f}")
    if rirs and p(0.35):
        y = reverb(y, rirs[int(rng.integers(len(rirs)))])
        desc.append("reverb")
    if p(0.6):
        kind = ["white", "pink", "brown", "babble"][int(rng.choice(4, p=[0.2, 0.3, 0.15, 0.35]))]
        n = len(y)
        noise = {"white": lambda: white(n, rng), "pink": lambda: pink(n, rng), "brown": lambda: brown(n, rng),
                 "babble": lambda: babble(pool, n, rng)}[kind]()
        snr = float(rng.uniform(0, 30)) if kind != "babble" else float(rng.uniform(5, 30))
        y = add_noise(y, noise, snr)
        desc.append(f"{kind}{snr:.0f}dB")
    if p(0.4):
        if rng.random() < 0.6:
            codec = rng.random() < 0.5
            y = telephone(y, codec=codec, lo=float(rng.uniform(200, 400)), hi=float(rng.uniform(3200, 3600)))
            desc.append("tel" + ("+mulaw" if codec else ""))
        else:
            fc = float(rng.uniform(4000, 7500))
            y = lowpass(y, fc)
            desc.append(f"lp{fc / 1000:.1f}k")
    elif p(0.1):
        y = mulaw(y / (np.max(np.abs(y)) + 1e-9) * 0.9)
        desc.append("mulaw")
    peak = float(np.max(np.abs(y))) + 1e-9
    db = float(rng.uniform(-30, 0))
    if rng.random() < 0.03:
        db = float(rng.uniform(0, 6))  # mild clipping
    y = gain(y / peak, db)
    desc.append(f"gain{db:.0f}")
    return y.astype(np.float32), ",".join(desc)
