#!/usr/bin/env python3
"""Makes the inputs of `archive_bench.rs` and times CPython on the same work.

    python3 crates/intake/examples/archive_bench.py DIR

Writes DIR/images.zip (20,000 PNGs of 64x64 RGB in 10 class folders,
deflated), DIR/big.zip (one 128 MB deflated CSV-like member) and DIR/data.tfrecord
(50,000 Examples: a 1 KB bytes feature, 32 floats, an int64 label), then
times CPython's zipfile reading every member (which checks CRC-32) as a
reference point. CPython has no CRC-32C, so no Python TFRecord number is
given.
"""

import os
import random
import struct
import sys
import time
import zipfile
import zlib

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(1)


def png(w, h, seed):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(bytes([0]) + bytes(((x * 7 + y * 13 + seed) % 256) for x in range(w * 3)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


images = os.path.join(out, "images.zip")
if not os.path.exists(images):
    pngs = [png(64, 64, s) for s in range(50)]
    with zipfile.ZipFile(images, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(20000):
            zf.writestr(f"class{i % 10}/{i:05d}.png", pngs[i % 50])

big = os.path.join(out, "big.zip")
if not os.path.exists(big):
    # CSV-like text (compresses about 3:1), 128 MB.
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.csv", "w") as f:
            i = 0
            written = 0
            while written < 128 << 20:
                chunk = "".join(
                    f"{j},{(j * 37) % 1000 / 7:.5f},{(j * 7919) % 100003}\n" for j in range(i, i + 10000)
                ).encode()
                f.write(chunk)
                written += len(chunk)
                i += 10000


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


T = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, body):
    return varint(field << 3 | 2) + varint(len(body)) + body


tfr = os.path.join(out, "data.tfrecord")
if not os.path.exists(tfr):
    image = bytes(rng.getrandbits(8) for _ in range(1024))
    with open(tfr, "wb") as f:
        for i in range(50000):
            feats = [
                ("image", ld(1, ld(1, image))),
                ("x", ld(2, ld(1, struct.pack("<32f", *[float(j + i % 7) for j in range(32)])))),
                ("label", ld(3, ld(1, varint(i % 10)))),
            ]
            m = b"".join(ld(1, ld(1, k.encode()) + ld(2, v)) for k, v in feats)
            rec = ld(1, m)
            length = struct.pack("<Q", len(rec))
            f.write(length + struct.pack("<I", masked(length)) + rec + struct.pack("<I", masked(rec)))

# CPython baselines.
t = time.perf_counter()
n = 0
with zipfile.ZipFile(images) as zf:
    for info in zf.infolist():
        n += len(zf.read(info))
s = time.perf_counter() - t
print(f"python zipfile images.zip: read {n / 1e6:.0f} MB in {s:.3f} s = {20000 / s:.0f} members/s, {n / s / 1e6:.0f} MB/s")
t = time.perf_counter()
with zipfile.ZipFile(big) as zf:
    n = len(zf.read("big.csv"))
s = time.perf_counter() - t
print(f"python zipfile big.zip: read {n / 1e6:.0f} MB in {s:.3f} s = {n / s / 1e6:.0f} MB/s")
