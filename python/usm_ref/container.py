"""Reader and writer of the usm-infer container (ModelFormat.md), in numpy.

Needs `xxhash` and `zstandard` (PyPI) besides numpy.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import xxhash
import zstandard

from .quant import BITS, PARTS, SCALE_FORMATS, SCHEMES, ASYMMETRIC, Layout, PackedTensor, round_up

MAGIC = b"\x89USM\r\n\x1a\n"
HEADER = struct.Struct("<8sHHIQQQQQQQQIIQQ16s")  # 120 bytes, then the header hash
ENTRY = struct.Struct("<IHBBBBBBIQQQQQQ")  # 64 bytes, then 5 x (offset, length), dims, name
SCHEME_NAMES = {v: k for k, v in SCHEMES.items()}
FORMAT_NAMES = {v: k for k, v in SCALE_FORMATS.items()}


class ContainerError(ValueError):
    pass


def _xxh(b) -> int:
    return xxhash.xxh64_intdigest(bytes(b), seed=0)


def write(path: str, tensors: dict, metadata: dict, level: int | None = 3) -> int:
    """Writes `tensors` (name -> PackedTensor, in order) with `metadata` (a dict; `format` is set). Returns bytes."""
    meta = dict(metadata)
    meta["format"] = "usm-infer"
    meta_bytes = json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    frames = []
    for name, t in tensors.items():
        codec, frame = 0, t.payload
        if level is not None:
            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
            z = cctx.compress(t.payload)
            if len(z) < len(t.payload):
                codec, frame = 1, z
        frames.append((name, t, codec, frame))
    dir_size = sum(round_up(144 + 8 * len(t.layout.shape) + len(n.encode()), 8) for n, t, _, _ in frames)
    stored = 128 + len(meta_bytes) + dir_size
    image_end = 0
    directory = bytearray()
    for name, t, codec, frame in frames:
        l = t.layout
        nb = name.encode()
        size = round_up(144 + 8 * len(l.shape) + len(nb), 8)
        image_off = round_up(image_end, 64)
        entry = ENTRY.pack(size, len(nb), SCHEMES[l.scheme], BITS[l.scheme], len(l.shape), SCALE_FORMATS[l.scale_format],
                           1 if l.scheme in ASYMMETRIC else 0, codec, l.block_size, stored, len(frame), image_off,
                           len(t.payload), _xxh(frame), _xxh(t.payload))
        parts = l.parts()
        entry += b"".join(struct.pack("<QQ", *parts[p]) for p in PARTS)
        entry += b"".join(struct.pack("<Q", d) for d in l.shape) + nb
        entry += b"\0" * (size - len(entry))
        directory += entry
        stored += len(frame)
        image_end = image_off + len(t.payload)
    header = HEADER.pack(MAGIC, 1, 0, 128, stored, 128, len(meta_bytes), 128 + len(meta_bytes), len(directory),
                         128 + len(meta_bytes) + len(directory), stored - (128 + len(meta_bytes) + len(directory)),
                         round_up(image_end, 64), len(frames), 0, _xxh(meta_bytes), _xxh(directory), b"\0" * 16)
    header += struct.pack("<Q", _xxh(header))
    with open(path, "wb") as f:
        f.write(header)
        f.write(meta_bytes)
        f.write(directory)
        for _, _, _, frame in frames:
            f.write(frame)
    return stored


def read(path: str) -> tuple[dict, dict]:
    """Reads and verifies a container; returns (metadata, name -> PackedTensor)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC[: min(8, len(data))]:
        raise ContainerError("bad magic")
    if len(data) < 128:
        raise ContainerError(f"truncated: {len(data)} bytes")
    fields = HEADER.unpack_from(data, 0)
    (_, major, minor, hsize, file_size, m_off, m_len, d_off, d_len, data_off, data_len, image_size, count, flags,
     m_hash, d_hash, reserved) = fields
    if major != 1:
        raise ContainerError(f"unsupported version {major}.{minor}")
    if struct.unpack_from("<Q", data, 120)[0] != _xxh(data[:120]):
        raise ContainerError("header checksum mismatch")
    if len(data) != file_size:
        raise ContainerError(f"file is {len(data)} bytes, header says {file_size}")
    meta_bytes = data[m_off:m_off + m_len]
    if _xxh(meta_bytes) != m_hash:
        raise ContainerError("metadata checksum mismatch")
    directory = data[d_off:d_off + d_len]
    if _xxh(directory) != d_hash:
        raise ContainerError("directory checksum mismatch")
    metadata = json.loads(meta_bytes)
    tensors = {}
    pos = 0
    for _ in range(count):
        (size, name_len, scheme, bits, rank, sfmt, has_zp, codec, block, s_off, s_len, i_off, p_len, s_hash,
         p_hash) = ENTRY.unpack_from(directory, pos)
        dims = struct.unpack_from(f"<{rank}Q", directory, pos + 144)
        name = directory[pos + 144 + 8 * rank: pos + 144 + 8 * rank + name_len].decode()
        layout = Layout(tuple(dims), SCHEME_NAMES[scheme], block, FORMAT_NAMES[sfmt])
        if layout.payload_length != p_len:
            raise ContainerError(f"{name}: payload length {p_len}, expected {layout.payload_length}")
        frame = data[s_off:s_off + s_len]
        if _xxh(frame) != s_hash:
            raise ContainerError(f"{name}: stored checksum mismatch")
        payload = frame if codec == 0 else zstandard.ZstdDecompressor().decompress(frame, max_output_size=p_len)
        if len(payload) != p_len or _xxh(payload) != p_hash:
            raise ContainerError(f"{name}: payload checksum mismatch")
        tensors[name] = PackedTensor(layout, bytes(payload))
        pos += size
    return metadata, tensors
