"""Packed tensors and the post-training quantizers of ModelFormat.md sections 5 and 6, in numpy.

This is the same math as Swift's `USMTensor.Quantizer`, operation for operation in float32, with means and sums
accumulated sequentially in float64 (np.cumsum), so both produce the same bytes. Tests in
Tests/USMFormatTests/PythonGoldenTests.swift check that on a container written by this module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEMES = {"f32": 0, "int8": 1, "int4": 2, "int2": 3, "bin": 4, "bin_norm": 5, "bin_asym": 6}
BITS = {"f32": 32, "int8": 8, "int4": 4, "int2": 2, "bin": 1, "bin_norm": 1, "bin_asym": 1}
CODE_RANGE = {"int8": (-128, 127), "int4": (-8, 7), "int2": (0, 3), "bin": (0, 1), "bin_norm": (0, 1), "bin_asym": (0, 1)}
ASYMMETRIC = {"int2", "bin_asym"}
SCALE_FORMATS = {"f32": 0, "int8": 1, "int8-row": 2}
PARTS = ("codes", "scales", "scale_factors", "zero_points", "zero_point_factors")
SEARCH_GRID = [np.float32(20 - i) / np.float32(20) for i in range(11)]


def round_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass(frozen=True)
class Layout:
    shape: tuple
    scheme: str
    block_size: int = 0
    scale_format: str = "f32"

    def __post_init__(self):
        if not (1 <= len(self.shape) <= 8) or any(d < 1 for d in self.shape):
            raise ValueError(f"invalid shape {self.shape}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme}")
        if self.scheme == "f32" and (self.block_size != 0 or self.scale_format != "f32"):
            raise ValueError("f32 tensors have no blocks or scales")
        if self.block_size and (self.block_size % 8 or not 8 <= self.block_size <= 65536):
            raise ValueError(f"invalid block size {self.block_size}")

    @property
    def k(self) -> int:
        return self.shape[-1]

    @property
    def rows(self) -> int:
        return int(np.prod(self.shape[:-1], dtype=np.int64)) if len(self.shape) > 1 else 1

    @property
    def padded_k(self) -> int:
        return round_up(self.k, 64)

    @property
    def block_length(self) -> int:
        return self.block_size or self.k

    @property
    def blocks_per_row(self) -> int:
        return -(-self.k // self.block_length)

    @property
    def row_bytes(self) -> int:
        return self.padded_k * BITS[self.scheme] // 8

    def parts(self) -> dict:
        """(offset, length) of every part, ModelFormat.md section 5."""
        out = {p: (0, 0) for p in PARTS}
        end = 0

        def place(name, length):
            nonlocal end
            off = round_up(end, 64)
            out[name] = (off, length)
            end = off + length

        if self.scheme == "f32":
            place("codes", self.rows * self.k * 4)
        else:
            n = self.rows * self.blocks_per_row
            int8 = self.scale_format != "f32"
            factors = self.rows if self.scale_format == "int8-row" else 1
            place("codes", self.rows * self.row_bytes)
            place("scales", n * (1 if int8 else 4))
            if int8:
                place("scale_factors", factors * 4)
            if self.scheme in ASYMMETRIC:
                place("zero_points", n * (1 if int8 else 4))
                if int8:
                    place("zero_point_factors", factors * 4)
        out["_end"] = end
        return out

    @property
    def payload_length(self) -> int:
        return self.parts()["_end"]


@dataclass
class PackedTensor:
    layout: Layout
    payload: bytes

    def part(self, name: str) -> bytes:
        off, length = self.layout.parts()[name]
        return self.payload[off:off + length]

    def codes(self) -> np.ndarray:
        """Integer codes [rows, k]: signed for int8/int4, unsigned for int2/bin_asym, -1/+1 for bin/bin_norm."""
        l = self.layout
        bits = BITS[l.scheme]
        raw = np.frombuffer(self.part("codes"), dtype=np.uint8).reshape(l.rows, l.row_bytes)
        if bits == 8:
            return raw.view(np.int8)[:, : l.k].astype(np.int32)
        per = 8 // bits
        fields = np.stack([(raw >> (i * bits)) & ((1 << bits) - 1) for i in range(per)], axis=-1)
        q = fields.reshape(l.rows, l.padded_k)[:, : l.k].astype(np.int32)
        if l.scheme == "int4":
            q = np.where(q >= 8, q - 16, q)
        elif l.scheme in ("bin", "bin_norm"):
            q = 2 * q - 1
        return q

    def _meta(self, part: str, factor_part: str, signed: bool) -> np.ndarray:
        l = self.layout
        n = l.rows * l.blocks_per_row
        if l.scale_format == "f32":
            return np.frombuffer(self.part(part), dtype="<f4")[:n].reshape(l.rows, l.blocks_per_row)
        codes = np.frombuffer(self.part(part), dtype=np.int8 if signed else np.uint8).astype(np.float32)
        factors = np.frombuffer(self.part(factor_part), dtype="<f4")
        codes = codes.reshape(l.rows, l.blocks_per_row)
        f = factors.reshape(-1, 1) if l.scale_format == "int8-row" else factors[0]
        return (codes * f).astype(np.float32)

    def scales(self) -> np.ndarray:
        return self._meta("scales", "scale_factors", False)

    def zero_points(self) -> np.ndarray:
        return self._meta("zero_points", "zero_point_factors", True)

    def dequantize(self) -> np.ndarray:
        l = self.layout
        if l.scheme == "f32":
            return np.frombuffer(self.part("codes"), dtype="<f4").reshape(l.shape).copy()
        q = self.codes().astype(np.float32)
        s = np.repeat(self.scales(), l.block_length, axis=1)[:, : l.k]
        out = q * s
        if l.scheme in ASYMMETRIC:
            out = out - np.repeat(self.zero_points(), l.block_length, axis=1)[:, : l.k]
        return out.astype(np.float32).reshape(l.shape)


def _seqsum(x: np.ndarray) -> np.ndarray:
    """Row sums accumulated left to right in float64 (as Swift's loop does)."""
    return np.cumsum(x.astype(np.float64), axis=1)[:, -1]


def _block_params(w: np.ndarray, scheme: str, clip):
    """Float parameters of one block column slice w [rows, n]: (scale, zp_f, zp, mean)."""
    rows, n = w.shape
    zeros = np.zeros(rows, dtype=np.float32)
    if scheme == "bin":
        return (_seqsum(np.abs(w)) / n).astype(np.float32), zeros, zeros, zeros
    if scheme == "bin_norm":
        mean = (_seqsum(w) / n).astype(np.float32)
        centred = (w - mean[:, None]).astype(np.float32)
        return (_seqsum(np.abs(centred)) / n).astype(np.float32), zeros, zeros, mean
    coefficients = SEARCH_GRID if clip == "search" else [np.float32(1.0 if clip in (None, "none") else clip)]
    best, best_err = None, np.full(rows, np.inf)
    for c in coefficients:
        p = _clipped(w, scheme, np.float32(c))
        if len(coefficients) == 1:
            return p
        err = _seqsum(np.abs(w - _reconstruct(w, scheme, p))) / n
        better = err < best_err
        if best is None:
            best = tuple(a.copy() for a in p)
        else:
            for a, b in zip(best, p):
                a[better] = b[better]
        best_err = np.where(better, err, best_err)
    return best


def _clipped(w, scheme, c):
    rows = w.shape[0]
    qmax = np.float32(CODE_RANGE[scheme][1])
    zeros = np.zeros(rows, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scheme in ASYMMETRIC:
            lo = (w.min(axis=1) * c).astype(np.float32)
            hi = (w.max(axis=1) * c).astype(np.float32)
            s = ((hi - lo) / qmax).astype(np.float32)
            zpf = np.where(s == 0, np.float32(0), np.float32(0) - lo / s).astype(np.float32)
            zp = np.where(s == 0, -lo, s * zpf).astype(np.float32)
            return s, zpf, zp, zeros
        amax = np.abs(w).max(axis=1).astype(np.float32)
        return (c * amax / qmax).astype(np.float32), zeros, zeros, zeros


def _reconstruct(w, scheme, p):
    s, zpf, zp, _ = p
    qmin, qmax = (np.float32(v) for v in CODE_RANGE[scheme])
    with np.errstate(divide="ignore", invalid="ignore"):
        if scheme in ASYMMETRIC:
            q = np.clip(np.round(w / s[:, None] + zpf[:, None]), qmin, qmax)
            r = q * s[:, None] - zp[:, None]
            return np.where(s[:, None] == 0, -zp[:, None], r).astype(np.float32)
        q = np.clip(np.round(w / s[:, None]), qmin, qmax)
        return np.where(s[:, None] == 0, np.float32(0), q * s[:, None]).astype(np.float32)


def quantize(values: np.ndarray, scheme: str, block_size: int = 0, scale_format: str = "f32", clip="none") -> PackedTensor:
    """Post-training quantization of an f32 tensor (ModelFormat.md section 6)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    shape = tuple(int(d) for d in values.shape)
    if scheme == "f32":
        layout = Layout(shape, "f32")
        return PackedTensor(layout, values.astype("<f4").tobytes())
    layout = Layout(shape, scheme, block_size, scale_format)
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot quantize NaN or infinity")
    w = values.reshape(layout.rows, layout.k)
    nb, bl = layout.blocks_per_row, layout.block_length
    params = [_block_params(w[:, j * bl:min((j + 1) * bl, layout.k)], scheme, clip) for j in range(nb)]
    s = np.stack([p[0] for p in params], axis=1)
    zpf = np.stack([p[1] for p in params], axis=1)
    zp = np.stack([p[2] for p in params], axis=1)
    mean = np.stack([p[3] for p in params], axis=1)
    asym = scheme in ASYMMETRIC

    parts = layout.parts()
    payload = bytearray(layout.payload_length)

    def put(name, arr):
        off, length = parts[name]
        b = arr.tobytes()
        assert len(b) == length, (name, len(b), length)
        payload[off:off + length] = b

    if scale_format == "f32":
        code_s, code_zpf = s, zpf
        put("scales", s.astype("<f4"))
        if asym:
            put("zero_points", zp.astype("<f4"))
    else:
        groups = s if scale_format == "int8-row" else s.reshape(1, -1)
        zgroups = zp if scale_format == "int8-row" else zp.reshape(1, -1)
        sf = (groups.max(axis=1) / np.float32(255)).astype(np.float32)
        zf = (np.abs(zgroups).max(axis=1) / np.float32(127)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            sq = np.where(sf[:, None] > 0, np.clip(np.round(groups / sf[:, None]), 0, 255), 0).astype(np.float32)
            zq = np.where(zf[:, None] > 0, np.clip(np.round(zgroups / zf[:, None]), -127, 127), 0).astype(np.float32)
            dec_s = (sq * sf[:, None]).astype(np.float32)
            dec_zp = (zq * zf[:, None]).astype(np.float32)
            dec_zpf = np.where(dec_s > 0, dec_zp / dec_s, np.float32(0)).astype(np.float32)
        code_s = dec_s.reshape(s.shape)
        code_zpf = dec_zpf.reshape(s.shape) if asym else zpf
        put("scales", sq.astype(np.uint8))
        put("scale_factors", sf.astype("<f4"))
        if asym:
            put("zero_points", zq.astype(np.int8))
            put("zero_point_factors", zf.astype("<f4"))

    # codes
    qmin, qmax = (np.float32(v) for v in CODE_RANGE[scheme])
    cs = np.repeat(code_s, bl, axis=1)[:, : layout.k]
    with np.errstate(divide="ignore", invalid="ignore"):
        if scheme == "bin":
            q = (w >= 0).astype(np.int32)
        elif scheme == "bin_norm":
            q = ((w - np.repeat(mean, bl, axis=1)[:, : layout.k]) >= 0).astype(np.int32)
        elif asym:
            cz = np.repeat(code_zpf, bl, axis=1)[:, : layout.k]
            q = np.where(cs > 0, np.clip(np.round(w / cs + cz), qmin, qmax), 0).astype(np.int32)
        else:
            q = np.where(cs > 0, np.clip(np.round(w / cs), qmin, qmax), 0).astype(np.int32)
    put("codes", pack_codes(q, layout))
    return PackedTensor(layout, bytes(payload))


def pack_codes(q: np.ndarray, layout: Layout) -> np.ndarray:
    """Stored codes [rows, k] (for sign-binary: the bit) packed little-endian into rows of row_bytes."""
    bits = BITS[layout.scheme]
    padded = np.zeros((layout.rows, layout.padded_k), dtype=np.int32)
    padded[:, : layout.k] = q
    if bits == 8:
        return padded.astype(np.int8).view(np.uint8)
    per = 8 // bits
    fields = (padded & ((1 << bits) - 1)).astype(np.uint8).reshape(layout.rows, -1, per)
    out = np.zeros(fields.shape[:2], dtype=np.uint8)
    for i in range(per):
        out |= fields[:, :, i] << np.uint8(i * bits)
    return out
