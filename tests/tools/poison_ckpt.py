#!/usr/bin/env python3
"""Writes a copy of a checkpoint whose first parameter is NaN, with both CRCs recomputed so it
still verifies: the training job must then stop on a non-finite loss. The header layout is
src/io/checkpoint.c's ckpt_header_t (104 bytes, little-endian)."""
import struct, sys, zlib
src, dst = sys.argv[1], sys.argv[2]
b = bytearray(open(src, "rb").read())
assert b[:8] == b"SEMAIMCK" and struct.unpack_from("<I", b, 12)[0] == 104, "unexpected header"
struct.pack_into("<f", b, 104, float("nan"))
struct.pack_into("<I", b, 96, zlib.crc32(bytes(b[104:])))
struct.pack_into("<I", b, 100, zlib.crc32(bytes(b[:100])))
open(dst, "wb").write(b)
