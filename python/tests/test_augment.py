import numpy as np
import pytest

pytest.importorskip("scipy")
from usm_ref import augment as A  # noqa: E402

SR = 16000


def _speech_like(n=SR * 2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


SAME_LENGTH = [
    lambda x, r: A.pitch_shift(x, 2.0),
    lambda x, r: A.add_noise(x, A.pink(len(x), r), 10.0),
    lambda x, r: A.reverb(x, A.exp_rir(r, 0.5)),
    lambda x, r: A.telephone(x),
    lambda x, r: A.telephone(x, codec=False),
    lambda x, r: A.lowpass(x, 4000.0),
    lambda x, r: A.mulaw(x),
    lambda x, r: A.gain(x, -6.0),
]


@pytest.mark.parametrize("k", range(len(SAME_LENGTH)))
def test_same_length_dtype_finite(k):
    x = _speech_like()
    y = SAME_LENGTH[k](x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))


@pytest.mark.parametrize("f", [0.9, 1.0, 1.1])
def test_speed_tempo_lengths(f):
    x = _speech_like()
    assert abs(len(A.speed(x, f)) - len(x) / f) <= 2
    y = A.tempo(x, f)
    assert abs(len(y) - int(len(x) / f)) <= 1 and y.dtype == np.float32


def test_pitch_shift_moves_f0_keeps_duration():
    t = np.arange(SR * 2) / SR
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    y = A.pitch_shift(x, 12.0)  # one octave up
    spec = np.abs(np.fft.rfft(y[4000:28000]))
    peak = np.argmax(spec) * SR / 24000
    assert abs(peak - 400) < 10 and len(y) == len(x)


def test_snr():
    x = _speech_like()
    n = A.white(len(x), np.random.default_rng(1))
    y = A.add_noise(x, n, 10.0)
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((y - x).astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.1


def test_telephone_removes_high_band():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    y = A.telephone(x, codec=False)
    s = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert s[f > 4500].sum() < 1e-3 * s[(f > 500) & (f < 3000)].sum()


def test_mulaw_roundtrip_error_small():
    x = np.linspace(-0.9, 0.9, 1001).astype(np.float32)
    assert np.max(np.abs(A.mulaw(x) - x)) < 0.03


def test_babble_and_colored_noise():
    r = np.random.default_rng(0)
    pool = [_speech_like(SR, s) for s in range(4)]
    for y in (A.babble(pool, 5000, r), A.pink(5000, r), A.brown(5000, r), A.babble([], 5000, r)):
        assert y.shape == (5000,) and y.dtype == np.float32 and np.all(np.isfinite(y))


def test_augment_deterministic_per_seed():
    x = _speech_like()
    pool = [_speech_like(SR, s) for s in range(1, 4)]
    rirs = [A.exp_rir(np.random.default_rng(i), 0.4) for i in range(3)]
    outs = []
    for seed in (5, 5, 6):
        y, d = A.augment(x, np.random.default_rng(seed), pool, rirs)
        assert y.dtype == np.float32 and y.ndim == 1 and np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
        assert 0.85 * len(x) <= len(y) <= 1.15 * len(x)
        outs.append((y, d))
    assert outs[0][1] == outs[1][1] and np.array_equal(outs[0][0], outs[1][0])
    assert outs[0][1] != outs[2][1] or not np.array_equal(outs[0][0], outs[2][0])


def test_room_rirs_deterministic():
    a = A.room_rirs(2, seed=1)
    b = A.room_rirs(2, seed=1)
    assert len(a) == 2 and all(np.array_equal(u, v) for u, v in zip(a, b))
    assert all(r.dtype == np.float32 and np.argmax(np.abs(r)) < len(r) for r in a)
