#!/usr/bin/env python3
"""Writes a copy of a checkpoint whose first parameter is NaN, with both CRCs recomputed so it
still verifies: the training job must then stop on a non-finite loss. The header layout is
src/io/checkpoint.c's ckpt_header_t (little-endian; its size is the u32 at 12, the payload CRC
and the header CRC its last 8 bytes)."""
import struct, sys, zlib
src, dst = sys.argv[1], sys.argv[2]
b = bytearray(open(src, "rb").read())
hb = struct.unpack_from("<I", b, 12)[0]
assert b[:8] == b"SEMAIMCK" and hb in (104, 120, 200), "unexpected header"
struct.pack_into("<f", b, hb, float("nan"))
struct.pack_into("<I", b, hb - 8, zlib.crc32(bytes(b[hb:])))
struct.pack_into("<I", b, hb - 4, zlib.crc32(bytes(b[:hb - 4])))
open(dst, "wb").write(b)
