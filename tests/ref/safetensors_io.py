"""Minimal safetensors reader/writer on numpy, for the parity dumps.

Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes; offsets count from the first data byte.
The reader validates everything it relies on, because the C side writes these files
and a silently misread tensor would turn a format bug into a numerical "mismatch".
"""
import json
import os
import struct

import numpy as np

DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
}
_NAME_OF = {v.str: k for k, v in DTYPES.items()}
_NAME_OF[np.dtype("|u1").str] = "U8"


class SafetensorsError(Exception):
    pass


def read(path):
    """Returns (tensors: dict name -> np.ndarray (own memory), metadata: dict)."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise SafetensorsError(f"{path}: cannot read: {e.strerror}") from None
    if len(buf) < 8:
        raise SafetensorsError(f"{path}: {len(buf)} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise SafetensorsError(f"{path}: header length {n} exceeds the file size {len(buf)}")
    try:
        hdr = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(hdr, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    meta = hdr.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    data = memoryview(buf)[8 + n:]
    out, spans = {}, []
    for name, e in hdr.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: entry must have exactly dtype, shape, data_offsets")
        if e["dtype"] not in DTYPES:
            raise SafetensorsError(f"{where}: unsupported dtype {e['dtype']!r}")
        dt = DTYPES[e["dtype"]]
        shape, offs = e["shape"], e["data_offsets"]
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise SafetensorsError(f"{where}: bad shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise SafetensorsError(f"{where}: bad data_offsets {offs!r}")
        b, en = offs
        if not 0 <= b <= en <= len(data):
            raise SafetensorsError(f"{where}: data_offsets {offs} outside the {len(data)} data bytes")
        count = int(np.prod(shape, dtype=np.int64))
        if en - b != count * dt.itemsize:
            raise SafetensorsError(f"{where}: {en - b} bytes for shape {shape} {e['dtype']} "
                                   f"(expected {count * dt.itemsize})")
        out[name] = np.frombuffer(data[b:en], dtype=dt).reshape(shape).copy()
        spans.append((b, en, name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise SafetensorsError(f"{path}: tensors {n0!r} and {n1!r} overlap")
    return out, meta


def write(path, tensors, metadata=None):
    """Writes tensors (dict name -> array-like, insertion order kept) to path atomically:
    a temporary name in the same directory, renamed when complete."""
    hdr, blobs, off = {}, [], 0
    if metadata:
        hdr["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.asarray(a)
        if a.dtype.str not in _NAME_OF:
            raise SafetensorsError(f"{path}: tensor {name!r}: unsupported numpy dtype {a.dtype}")
        raw = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": _NAME_OF[a.dtype.str], "shape": list(a.shape),
                     "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)  # data starts 8-byte aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for raw in blobs:
                f.write(raw)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SafetensorsError(f"{path}: cannot write: {e.strerror}") from None
