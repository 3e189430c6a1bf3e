"""usm_infer: the usm-infer runtime from Python, through its C API (libusm, usm.h) with ctypes.

    import usm_infer
    r = usm_infer.Recognizer("model.usm")
    print(r.transcribe("call.flac").text)                 # or r.transcribe(numpy_array, sample_rate=8000)
    with r.stream(sample_rate=16000) as s:
        s.accept(chunk); print(s.partial().text)
        final = s.finish()

Recognition runs in the native library with the GIL released (ctypes releases it around every foreign call), so
threads transcribing at once use several cores. A Recognizer may be shared between threads; a Stream is used by one
thread at a time.

The library is found at $USM_LIBRARY, next to this package (a wheel bundles it), or in the source checkout's
.build/release or .build/debug.
"""
from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass, field

__all__ = ["Recognizer", "Stream", "Result", "Word", "USMError", "library_path"]


class USMError(Exception):
    """A failed call: `status` is the C API's usm_status (the tools' exit statuses: 64 usage, 65 invalid data,
    66 cannot open, 70 internal)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Result:
    text: str
    words: list[Word] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    token_starts: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    is_final: bool = False
    json: dict = field(default_factory=dict)


class _Options(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int32), ("beam", ctypes.c_int32), ("activations", ctypes.c_int32),
                ("max_audio_seconds", ctypes.c_double)]


class _Word(ctypes.Structure):
    _fields_ = [("word", ctypes.c_char_p), ("start", ctypes.c_double), ("end", ctypes.c_double)]


class _Result(ctypes.Structure):
    _fields_ = [("text", ctypes.c_char_p), ("n_words", ctypes.c_size_t), ("words", ctypes.POINTER(_Word)),
                ("n_tokens", ctypes.c_size_t), ("token_ids", ctypes.POINTER(ctypes.c_int32)),
                ("token_starts", ctypes.POINTER(ctypes.c_double)), ("audio_seconds", ctypes.c_double),
                ("compute_seconds", ctypes.c_double), ("is_final", ctypes.c_int32), ("json", ctypes.c_char_p)]


ACTIVATIONS = {"int8-block": 0, "int8-token": 1, "float": 2, "int6-bin": 3, "int5-bin": 4}


def library_path() -> str:
    """Where libusm is loaded from."""
    if os.environ.get("USM_LIBRARY"):
        return os.environ["USM_LIBRARY"]
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "libusm.so"), os.path.join(here, "libusm.dylib")]
    root = os.path.abspath(os.path.join(here, "..", ".."))
    for cfg in ("release", "debug"):
        candidates += [os.path.join(root, ".build", cfg, "libusm.so"), os.path.join(root, ".build", cfg, "libusm.dylib")]
    for c in candidates:
        if os.path.exists(c):
            return c
    raise OSError("libusm not found: set USM_LIBRARY, or build it with `swift build -c release --product usm` "
                  f"(looked in {', '.join(candidates)})")


_lib = None


def _load():
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(library_path())
    P = ctypes.c_void_p
    R = ctypes.POINTER(ctypes.POINTER(_Result))
    sigs = {
        "usm_version": ([], ctypes.c_char_p),
        "usm_api_version": ([], ctypes.c_int32),
        "usm_options_init": ([ctypes.POINTER(_Options)], None),
        "usm_recognizer_open": ([ctypes.c_char_p, ctypes.POINTER(_Options), ctypes.POINTER(P), ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_recognizer_open_bytes": ([ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Options), ctypes.POINTER(P), ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_recognizer_free": ([P], None),
        "usm_recognizer_sample_rate": ([P], ctypes.c_int32),
        "usm_transcribe_f32": ([P, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_int32, R, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_transcribe_file": ([P, ctypes.c_char_p, R, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_transcribe_encoded": ([P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, R, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_result_free": ([ctypes.POINTER(_Result)], None),
        "usm_stream_create": ([P, ctypes.c_int32, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_stream_accept_f32": ([P, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_stream_partial": ([P, R, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_stream_is_endpoint": ([P], ctypes.c_int32),
        "usm_stream_finish": ([P, R, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int),
        "usm_stream_reset": ([P], None),
        "usm_stream_free": ([P], None),
        "usm_string_free": ([ctypes.c_void_p], None),
    }
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, res
    if lib.usm_api_version() < 2:
        raise OSError(f"libusm API version {lib.usm_api_version()}, this package needs 2 or later")
    _lib = lib
    return lib


def _check(status: int, err: ctypes.c_void_p):
    if status == 0:
        return
    lib = _load()
    message = ctypes.string_at(err.value).decode() if err.value else f"usm status {status}"
    if err.value:
        lib.usm_string_free(err)
    raise USMError(status, message)


def _result(p) -> Result:
    lib = _load()
    try:
        r = p.contents
        words = [Word(r.words[i].word.decode(), r.words[i].start, r.words[i].end) for i in range(r.n_words)]
        return Result(text=r.text.decode(), words=words, token_ids=[r.token_ids[i] for i in range(r.n_tokens)],
                      token_starts=[r.token_starts[i] for i in range(r.n_tokens)], audio_seconds=r.audio_seconds,
                      compute_seconds=r.compute_seconds, is_final=bool(r.is_final), json=json.loads(r.json.decode()))
    finally:
        lib.usm_result_free(p)


def _floats(samples):
    """A contiguous float32 buffer of `samples` (a numpy array, array.array('f') or a sequence of numbers)."""
    try:
        import numpy as np
        a = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        return a, a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), a.size
    except ImportError:
        a = (ctypes.c_float * len(samples))(*samples)
        return a, ctypes.cast(a, ctypes.POINTER(ctypes.c_float)), len(samples)


class _Handle:
    """A native object freed by the C function named `_free`, on close(), at the end of a `with` block, or when
    collected."""

    _free = ""
    _h = None

    def close(self):
        if getattr(self, "_h", None):
            getattr(_load(), self._free)(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Recognizer(_Handle):
    """A loaded model (immutable; share it between threads)."""

    _free = "usm_recognizer_free"

    def __init__(self, model, *, threads: int = 1, beam: int = 1, activations: str = "int8-block",
                 max_audio_seconds: float = 0.0):
        lib = _load()
        if activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {sorted(ACTIVATIONS)}")
        o = _Options()
        lib.usm_options_init(ctypes.byref(o))
        o.threads, o.beam, o.activations, o.max_audio_seconds = threads, beam, ACTIVATIONS[activations], max_audio_seconds
        h, err = ctypes.c_void_p(), ctypes.c_void_p()
        if isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
            _check(lib.usm_recognizer_open_bytes(data, len(data), ctypes.byref(o), ctypes.byref(h), ctypes.byref(err)), err)
        else:
            _check(lib.usm_recognizer_open(os.fsencode(model), ctypes.byref(o), ctypes.byref(h), ctypes.byref(err)), err)
        self._h = h

    @property
    def sample_rate(self) -> int:
        return _load().usm_recognizer_sample_rate(self._h)

    def transcribe(self, audio, sample_rate: int | None = None, name: str | None = None) -> Result:
        """A file path (any format libsndfile reads); an audio file's contents as bytes (an upload, a blob: decoded
        from memory, `name` stands for the path in errors); or mono samples in [-1, 1] at `sample_rate`."""
        lib = _load()
        out, err = ctypes.POINTER(_Result)(), ctypes.c_void_p()
        if isinstance(audio, (str, os.PathLike)):
            _check(lib.usm_transcribe_file(self._h, os.fsencode(audio), ctypes.byref(out), ctypes.byref(err)), err)
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            if sample_rate is not None:
                raise ValueError("bytes are an encoded audio file (its header gives the rate); pass samples as floats")
            data = bytes(audio)
            label = None if name is None else os.fsencode(name)
            _check(lib.usm_transcribe_encoded(self._h, data, len(data), label, ctypes.byref(out), ctypes.byref(err)), err)
        else:
            if sample_rate is None:
                raise ValueError("sample_rate is required for samples")
            keep, ptr, n = _floats(audio)
            _check(lib.usm_transcribe_f32(self._h, ptr, n, int(sample_rate), ctypes.byref(out), ctypes.byref(err)), err)
            del keep
        return _result(out)

    def stream(self, sample_rate: int | None = None) -> "Stream":
        return Stream(self, sample_rate or self.sample_rate)


class Stream(_Handle):
    """A streaming session: accept() audio as it arrives, partial(), finish() for the final result."""

    _free = "usm_stream_free"

    def __init__(self, recognizer: Recognizer, sample_rate: int):
        lib = _load()
        self._recognizer = recognizer  # keeps the model alive
        h, err = ctypes.c_void_p(), ctypes.c_void_p()
        _check(lib.usm_stream_create(recognizer._h, int(sample_rate), ctypes.byref(h), ctypes.byref(err)), err)
        self._h = h

    def accept(self, samples):
        keep, ptr, n = _floats(samples)
        err = ctypes.c_void_p()
        _check(_load().usm_stream_accept_f32(self._h, ptr, n, ctypes.byref(err)), err)
        del keep

    def _result_of(self, function: str) -> Result:
        out, err = ctypes.POINTER(_Result)(), ctypes.c_void_p()
        _check(getattr(_load(), function)(self._h, ctypes.byref(out), ctypes.byref(err)), err)
        return _result(out)

    def partial(self) -> Result:
        return self._result_of("usm_stream_partial")

    @property
    def is_endpoint(self) -> bool:
        return bool(_load().usm_stream_is_endpoint(self._h))

    def finish(self) -> Result:
        return self._result_of("usm_stream_finish")

    def reset(self):
        _load().usm_stream_reset(self._h)
