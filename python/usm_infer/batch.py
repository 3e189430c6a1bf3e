"""Batch transcription on Ray Data: a folder or manifest of audio files in, JSON lines out, transcribed by actors
that each load the model once.

    python -m usm_infer.batch --model model.usm --input calls/ --output transcripts/ --workers 8

On a Ray cluster, run the same command on the head node (or with RAY_ADDRESS set): `ray.init()` joins the cluster
and the actors spread over its nodes; every node needs this package and libusm (the wheel bundles it) and the model
file at the same path (or a shared file system). See docs/batch.md.
"""
from __future__ import annotations

import argparse
import json
import os
import time

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".au")


def list_inputs(source: str) -> list[str]:
    """The audio files of a folder (recursively, sorted), or the paths of a manifest (one per line, or JSON lines
    with a "path" key; relative paths are relative to the manifest)."""
    if os.path.isdir(source):
        out = []
        for root, _, files in os.walk(source):
            out += [os.path.join(root, f) for f in files if f.lower().endswith(AUDIO_EXTENSIONS)]
        return sorted(out)
    base = os.path.dirname(os.path.abspath(source))
    paths = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            p = json.loads(line)["path"] if line.startswith("{") else line
            paths.append(p if os.path.isabs(p) else os.path.join(base, p))
    return paths


class Transcriber:
    """The Ray Data actor: loads the model once, then transcribes batches of paths. A file that fails gets its
    error (message and status) in its row instead of failing the job."""

    def __init__(self, model: str, threads: int = 1, beam: int = 1):
        from usm_infer import Recognizer
        self.recognizer = Recognizer(model, threads=threads, beam=beam)

    def __call__(self, batch: dict) -> dict:
        from usm_infer import USMError
        rows = {"path": [], "text": [], "words": [], "audio_seconds": [], "compute_seconds": [], "error": [], "status": []}
        for path in batch["path"]:
            path = str(path)
            try:
                r = self.recognizer.transcribe(path)
                text, words = r.text, json.dumps([w.__dict__ for w in r.words])
                secs, compute, err, status = r.audio_seconds, r.compute_seconds, "", 0
            except USMError as e:
                text, words, secs, compute, err, status = "", "[]", 0.0, 0.0, str(e), e.status
            for k, v in zip(rows, (path, text, words, secs, compute, err, status)):
                rows[k].append(v)
        return rows


def runtime_env() -> dict:
    """What Ray's workers need to find this package and libusm when they are started from elsewhere (a source
    checkout not installed with pip): PYTHONPATH and USM_LIBRARY."""
    from usm_infer import library_path

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path, "USM_LIBRARY": library_path()}}


def transcribe_dataset(paths: list[str], output: str, model: str, *, workers: int = 2, threads: int = 1,
                       beam: int = 1, batch_size: int = 4) -> dict:
    """Transcribes `paths` with `workers` actors of `threads` kernel threads each and writes JSON lines into the
    folder `output`. Returns a summary (files, audio seconds, wall seconds, x real time, failures)."""
    import ray

    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    start = time.perf_counter()
    ds = ray.data.from_items([{"path": p} for p in paths])
    ds = ds.map_batches(Transcriber, fn_constructor_kwargs={"model": os.path.abspath(model), "threads": threads, "beam": beam},
                        batch_size=batch_size, concurrency=workers, num_cpus=threads)
    ds = ds.materialize()
    ds.write_json(output)
    rows = ds.take_all()
    wall = time.perf_counter() - start
    audio = sum(r["audio_seconds"] for r in rows)
    return {"files": len(rows), "audio_seconds": audio, "wall_seconds": wall,
            "x_real_time": audio / wall if wall > 0 else 0.0, "failures": sum(1 for r in rows if r["status"] != 0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="a folder of audio files or a manifest")
    ap.add_argument("--output", required=True, help="folder for the JSON lines files")
    ap.add_argument("--workers", type=int, default=2, help="actors, each with its own copy of the model")
    ap.add_argument("--threads", type=int, default=1, help="kernel threads per actor")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4)
    a = ap.parse_args(argv)
    paths = list_inputs(a.input)
    if not paths:
        ap.error(f"no audio files in {a.input}")
    summary = transcribe_dataset(paths, a.output, a.model, workers=a.workers, threads=a.threads, beam=a.beam,
                                 batch_size=a.batch_size)
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
