"""The Python binding over libusm: the bundled sample gives usm-infer's transcript from a file, from samples, from a
stream, and from threads at once; errors carry the C API's statuses."""
import os
import subprocess
import threading

import pytest

# the checkout (models, the CLI); USM_CHECKOUT when the test runs from elsewhere (scripts/build-wheel.sh)
ROOT = os.environ.get("USM_CHECKOUT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "Models", "usm-infer-default.usm")
SAMPLE = os.path.join(ROOT, "Models", "sample.wav")

usm_infer = pytest.importorskip("usm_infer")
try:
    usm_infer.library_path()
except OSError as e:  # pragma: no cover - depends on the build
    pytest.skip(f"libusm is not built ({e})", allow_module_level=True)


def usm_infer_cli():
    for cfg in ("release", "debug"):
        b = os.path.join(ROOT, ".build", cfg, "usm-infer")
        if os.path.exists(b):
            return subprocess.run([b, "--model", MODEL, SAMPLE], check=True, capture_output=True, text=True).stdout.strip()
    pytest.skip("usm-infer is not built")


def test_file_samples_stream_and_threads_agree_with_the_cli():
    np = pytest.importorskip("numpy")
    sf = pytest.importorskip("soundfile")
    expected = usm_infer_cli()
    r = usm_infer.Recognizer(MODEL)
    assert r.sample_rate == 16000
    res = r.transcribe(SAMPLE)
    assert res.text == expected and res.is_final and res.audio_seconds > 3 and res.json["text"] == expected
    assert len(res.token_ids) == len(res.token_starts) > 0
    audio, rate = sf.read(SAMPLE, dtype="float32")
    assert r.transcribe(audio, sample_rate=rate).text == expected
    with r.stream(sample_rate=rate) as s:
        for i in range(0, len(audio), 1600):
            s.accept(audio[i:i + 1600])
            assert not s.partial().is_final
        assert s.finish().text == expected
    out = [None] * 4

    def job(i):
        out[i] = r.transcribe(audio, sample_rate=rate).text
    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [expected] * 4
    assert usm_infer.Recognizer(open(MODEL, "rb").read()).transcribe(np.asarray(audio), sample_rate=rate).text == expected
    # the file's bytes, decoded from memory
    data = open(SAMPLE, "rb").read()
    assert r.transcribe(data).text == expected and r.transcribe(memoryview(data)).text == expected


def test_errors_carry_statuses():
    with pytest.raises(usm_infer.USMError) as e:
        usm_infer.Recognizer("/nonexistent.usm")
    assert e.value.status == 66
    with pytest.raises(usm_infer.USMError) as e:
        usm_infer.Recognizer(MODEL, beam=100000)
    assert e.value.status == 64 and "beam" in str(e.value)
    r = usm_infer.Recognizer(MODEL)
    with pytest.raises(usm_infer.USMError) as e:
        r.transcribe([0.0, float("nan")], sample_rate=16000)
    assert e.value.status == 65
    with pytest.raises(usm_infer.USMError) as e:
        r.transcribe(b"not audio at all", name="notes.txt")
    assert e.value.status == 65 and "notes.txt" in str(e.value)
    with pytest.raises(ValueError):
        r.transcribe(b"RIFF", sample_rate=16000)
