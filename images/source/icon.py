"""Draws images/icon.png (128x128 RGBA): a production slot, a staging slot and a swap arrow.

Run from the repository root with `python3 images/source/icon.py`; it needs only the standard library.
"""
import struct
import zlib

W = H = 128
BLUE = (11, 61, 145, 255)
WHITE = (255, 255, 255, 255)
GREEN = (80, 220, 140, 255)
px = [[(0, 0, 0, 0)] * W for _ in range(H)]


def in_rounded_square(x, y, r):
    cx = min(max(x, r), W - 1 - r)
    cy = min(max(y, r), H - 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def rect(x0, y0, x1, y1, colour):
    for y in range(y0, y1):
        for x in range(x0, x1):
            px[y][x] = colour


for y in range(H):
    for x in range(W):
        if in_rounded_square(x, y, 18):
            t = y / H
            px[y][x] = (int(11 + 20 * t), int(61 + 40 * t), int(145 + 60 * t), 255)

rect(22, 30, 106, 52, WHITE)  # production slot
rect(22, 76, 106, 98, WHITE)  # staging slot
rect(28, 36, 60, 46, BLUE)  # the release in production
rect(28, 82, 60, 92, GREEN)  # the new release in staging
rect(84, 52, 90, 76, GREEN)  # swap arrow shaft
for i in range(7):
    rect(80 + i, 58 - i, 94 - i, 59 - i, GREEN)  # arrow head up
    rect(80 + i, 70 + i, 94 - i, 71 + i, GREEN)  # arrow head down

raw = b"".join(b"\x00" + b"".join(struct.pack("4B", *p) for p in row) for row in px)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


png = (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 6, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(raw, 9))
    + chunk(b"IEND", b"")
)
with open("images/icon.png", "wb") as f:
    f.write(png)
