#!/usr/bin/env python3
"""Load test for usm-server: N concurrent uploads and S concurrent real-time WebSocket streams, loopback only.

Bounded in count (--uploads, --streams) and in time (--max-seconds: everything still running then is cancelled).
Needs aiohttp (pip install aiohttp). Example, against a release build started with the bundled model:

    python3 Server/loadtest.py --url http://127.0.0.1:8080 --file Models/sample.wav --uploads 64 --concurrency 8 --streams 8
"""
import argparse
import asyncio
import ipaddress
import json
import statistics
import sys
import time
import urllib.parse
import wave

import aiohttp


def loopback_only(url):
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    sys.exit(f"refusing {url}: this load test only targets loopback addresses (127.0.0.0/8, ::1, localhost)")


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            sys.exit(f"{path}: need 16-bit mono PCM WAV for streaming")
        return w.getframerate(), w.readframes(w.getnframes())


async def uploads(args, audio_bytes, seconds, headers):
    latencies, statuses = [], {}
    sem = asyncio.Semaphore(args.concurrency)
    url = args.url.rstrip("/") + "/v1/audio/transcriptions"

    async def one(session):
        async with sem:
            form = aiohttp.FormData()
            form.add_field("model", args.model) if args.model else None
            form.add_field("file", audio_bytes, filename="audio.wav", content_type="audio/wav")
            t = time.perf_counter()
            async with session.post(url, data=form, headers=headers) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status == 200:
                    latencies.append(time.perf_counter() - t)

    timeout = aiohttp.ClientTimeout(total=args.max_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(args.uploads)), return_exceptions=True)
        wall = time.perf_counter() - t0
    ok = len(latencies)
    return {
        "uploads": args.uploads, "concurrency": args.concurrency, "ok": ok, "statuses": statuses, "wall_s": wall,
        "audio_s": ok * seconds, "x_realtime": ok * seconds / wall if wall > 0 else 0,
        "p50_s": pct(latencies, 50), "p95_s": pct(latencies, 95), "p99_s": pct(latencies, 99),
    }


async def streams(args, rate, pcm, headers):
    """Each stream sends the audio in --chunk-ms chunks at real-time pace and asks for acks; chunk latency is the
    time from sending a chunk to the server's ack of it (the chunk recognized)."""
    chunk = int(rate * args.chunk_ms / 1000) * 2
    chunk_lat, final_lat, errors, finals = [], [], [], 0
    base = args.url.replace("http://", "ws://").rstrip("/")
    url = f"{base}/v1/audio/stream?sample_rate={rate}&encoding=pcm_s16le&acks=1" + (f"&model={args.model}" if args.model else "")

    async def one(session, k):
        nonlocal finals
        if args.stagger:
            # independent clients: stream k's chunks go out k / streams of a chunk period after stream 0's
            await asyncio.sleep(k / args.streams * args.chunk_ms / 1000)
        async with session.ws_connect(url, headers=headers, max_msg_size=1 << 22) as ws:
            sent = []

            async def reader():
                nonlocal finals
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    m = json.loads(msg.data)
                    now = time.perf_counter()
                    if m["type"] == "ack":
                        i = m["chunk"]
                        if i < len(sent):
                            chunk_lat.append(now - sent[i])
                    elif m["type"] == "final" and m.get("last"):
                        final_lat.append(now - sent[-1])
                        finals += 1
                    elif m["type"] == "error":
                        errors.append(m)

            task = asyncio.create_task(reader())
            start = time.perf_counter()
            for i, at in enumerate(range(0, len(pcm), chunk)):
                # real time: chunk i goes out when its audio would have been spoken
                delay = start + i * args.chunk_ms / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent.append(time.perf_counter())
                if ws.closed:
                    break  # the server refused the stream (at capacity) or ended it
                try:
                    await ws.send_bytes(pcm[at:at + chunk])
                except ConnectionResetError:  # aiohttp's ClientConnectionResetError: closed while sending
                    break
            sent.append(time.perf_counter())
            if not ws.closed:
                try:
                    await ws.send_str('{"type":"finish"}')
                except ConnectionResetError:
                    pass
            await task

    timeout = aiohttp.ClientTimeout(total=args.max_seconds)
    # no connection limit: aiohttp's default of 100 would hold streams past the 100th until others end
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(session, k) for k in range(args.streams)), return_exceptions=True)
        wall = time.perf_counter() - t0
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    # streams the server turned away at capacity or while not ready (an error message, then close 1013)
    refused = [e for e in errors if e.get("error", {}).get("code") in ("queue_full", "not_ready")]
    errors = [e for e in errors if e not in refused]
    return {
        "streams": args.streams, "chunk_ms": args.chunk_ms, "finished": finals, "refused": len(refused), "errors": len(errors) + len(failures),
        "wall_s": wall, "chunk_p50_ms": pct(chunk_lat, 50) * 1000, "chunk_p95_ms": pct(chunk_lat, 95) * 1000,
        "chunk_p99_ms": pct(chunk_lat, 99) * 1000, "final_p50_ms": pct(final_lat, 50) * 1000,
        "final_p99_ms": pct(final_lat, 99) * 1000, "failures": failures[:3],
    }


async def rss_samples(pid):
    """VmRSS of `pid` in MB, once a second until cancelled; returns the samples."""
    samples = []
    try:
        while True:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            samples.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
            await asyncio.sleep(1)
    except asyncio.CancelledError:
        return samples


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--file", required=True, help="16-bit mono WAV")
    p.add_argument("--model", default=None)
    p.add_argument("--token", default=None)
    p.add_argument("--uploads", type=int, default=32, help="uploads in all (at most 10000)")
    p.add_argument("--concurrency", type=int, default=4, help="uploads at once")
    p.add_argument("--streams", type=int, default=4, help="concurrent real-time streams (at most 1000)")
    p.add_argument("--chunk-ms", type=int, default=100)
    p.add_argument("--stagger", action="store_true",
                   help="spread the streams' start over one chunk period, as independent clients would be (by default "
                        "they start together, so every chunk period a chunk of every stream arrives at once)")
    p.add_argument("--max-seconds", type=float, default=300, help="each phase stops after this long")
    p.add_argument("--rounds", type=int, default=1, help="run the stream phase this many times (a soak; at most 100)")
    p.add_argument("--server-pid", type=int, default=None,
                   help="sample this process's resident memory (VmRSS, Linux) every second and report it per round")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    loopback_only(args.url)
    args.uploads = max(0, min(args.uploads, 10000))
    args.streams = max(0, min(args.streams, 1000))
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    audio = open(args.file, "rb").read()
    rate, pcm = read_wav(args.file)
    seconds = len(pcm) / 2 / rate
    out = {"file": args.file, "audio_seconds": seconds}
    if args.uploads:
        out["upload"] = await asyncio.wait_for(uploads(args, audio, seconds, headers), args.max_seconds + 10)
    if args.streams:
        rounds = []
        for _ in range(max(1, min(args.rounds, 100))):
            sampler = asyncio.create_task(rss_samples(args.server_pid)) if args.server_pid else None
            r = await asyncio.wait_for(streams(args, rate, pcm, headers), args.max_seconds + 10)
            if sampler:
                sampler.cancel()
                mb = await sampler
                r["rss_mb_end"], r["rss_mb_max"] = (mb[-1], max(mb)) if mb else (float("nan"), float("nan"))
            rounds.append(r)
        out["stream"] = rounds[0]
        out["stream_rounds"] = rounds
    if args.json:
        print(json.dumps(out, indent=2))
        return
    if "upload" in out:
        u = out["upload"]
        print("| uploads | concurrent | ok | wall s | x real time | p50 s | p95 s | p99 s |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {u['uploads']} | {u['concurrency']} | {u['ok']} {u['statuses']} | {u['wall_s']:.2f} | {u['x_realtime']:.1f} "
              f"| {u['p50_s']:.3f} | {u['p95_s']:.3f} | {u['p99_s']:.3f} |")
    if "stream" in out:
        s = out["stream"]
        print()
        print(f"audio {out['audio_seconds']:.1f} s per stream, sent at real-time pace: a wall time well past it means the "
              "load generator itself fell behind")
        print("| streams | chunk ms | wall s | finished | refused | errors | chunk p50 ms | p95 ms | p99 ms | final p50 ms | final p99 ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {s['streams']} | {s['chunk_ms']} | {s['wall_s']:.1f} | {s['finished']} | {s['refused']} | {s['errors']} | {s['chunk_p50_ms']:.1f} "
              f"| {s['chunk_p95_ms']:.1f} | {s['chunk_p99_ms']:.1f} | {s['final_p50_ms']:.1f} | {s['final_p99_ms']:.1f} |")
        if s["failures"]:
            print("failures:", s["failures"])
        if len(out["stream_rounds"]) > 1 or args.server_pid:
            print()
            print("| round | wall s | finished | errors | chunk p50 ms | p95 ms | p99 ms | server RSS MB at end | max |")
            print("|---|---|---|---|---|---|---|---|---|")
            for i, r in enumerate(out["stream_rounds"]):
                print(f"| {i + 1} | {r['wall_s']:.1f} | {r['finished']} | {r['errors']} | {r['chunk_p50_ms']:.1f} | {r['chunk_p95_ms']:.1f} "
                      f"| {r['chunk_p99_ms']:.1f} | {r.get('rss_mb_end', float('nan')):.0f} | {r.get('rss_mb_max', float('nan')):.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
