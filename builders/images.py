"""Image encoding for raw-pixel sources (stored as PNG, losslessly and deterministically).

:func:`png_batch` writes the bytes Pillow's PNG writer writes with its defaults (``Image.save(format="PNG")``):
per row the first of the filters None, Up, Sub, Paeth with the least sum of |signed byte| (Pillow's ZIP encoder
without ``optimize``), zlib level 6, 15-bit window, memLevel 9, ``Z_FILTERED``, IDAT chunks of at most 64 KiB.
It filters a whole stack of images in a few NumPy calls and compresses each with :mod:`zlib`, which releases the
GIL; Pillow spends about as long again per small image in Python (``save``, plugin and chunk calls) holding it,
which is what kept a threaded build from scaling. ``tests/test_images.py`` pins the bytes against Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IDAT_MAX = 65536  # Pillow's ImageFile.MAXBLOCK: the encoder's output block, one IDAT chunk each
_CHUNK = 16  # images filtered per NumPy pass: the temporaries stay in cache (64 at once is 1.6× slower)
_FILTER_TYPES = np.array([0, 2, 1, 4], dtype=np.uint8)  # None, Up, Sub, Paeth: Pillow's order of trial


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _select(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` where ``mask`` else ``b``, by bit masks (``np.where`` on random masks is several times slower)."""
    m = (-mask.view(np.int8)).view(np.uint8)
    return b ^ ((a ^ b) & m)


def _filtered_rows(stack: np.ndarray, bpp: int) -> np.ndarray:
    """``[B, H, 1 + W·bpp]`` uint8: each row's filter type byte and its filtered bytes."""
    rows = stack.reshape(stack.shape[0], stack.shape[1], -1)
    up = np.zeros_like(rows)
    up[:, 1:] = rows[:, :-1]
    left = np.zeros_like(rows)
    left[:, :, bpp:] = rows[:, :, :-bpp]
    up_left = np.zeros_like(rows)
    up_left[:, :, bpp:] = up[:, :, :-bpp]
    c = up_left.astype(np.int16)
    ac, bc = left.astype(np.int16) - c, up.astype(np.int16) - c
    pa, pb, pc = np.abs(bc), np.abs(ac), np.abs(ac + bc)  # Paeth: |p - a|, |p - b|, |p - c| for p = a + b - c
    paeth = _select((pa <= pb) & (pa <= pc), left, _select(pb <= pc, up, up_left))
    cand = np.stack([rows, rows - up, rows - left, rows - paeth])  # uint8 arithmetic wraps, as PNG's does
    # a byte's distance from zero, min(v, 256 - v), is |v as int8| (128 for -128, read back as uint8)
    cost = np.abs(cand.view(np.int8)).view(np.uint8).sum(axis=3, dtype=np.uint32)
    pick = np.argmin(cost, axis=0)  # the first least one: Pillow keeps a later filter only if strictly better
    n = pick.size
    chosen = cand.reshape(4, n, -1)[pick.reshape(-1), np.arange(n)]  # whole rows: a fast gather
    return np.concatenate([_FILTER_TYPES[pick].reshape(n, 1), chosen], axis=1).reshape(*pick.shape, -1)


def png_batch(stack: np.ndarray) -> list[bytes]:
    """Encode ``[B, H, W]`` (grey) or ``[B, H, W, 3]`` (RGB) uint8 images as PNG, one ``bytes`` each."""
    stack = np.ascontiguousarray(stack, dtype=np.uint8)
    if stack.ndim not in (3, 4) or (stack.ndim == 4 and stack.shape[3] != 3) or 0 in stack.shape[1:3]:
        raise ValueError(f"png_batch takes [B, H, W] or [B, H, W, 3] images, got shape {stack.shape}")
    h, w = stack.shape[1:3]
    bpp = 1 if stack.ndim == 3 else 3
    head = _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if bpp == 1 else 2, 0, 0, 0))
    tail = _chunk(b"IEND", b"")
    out = []
    for raw in (r for s in range(0, len(stack), _CHUNK) for r in _filtered_rows(stack[s : s + _CHUNK], bpp)):
        z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_FILTERED)
        data = z.compress(raw.tobytes()) + z.flush()
        idat = b"".join(_chunk(b"IDAT", data[i : i + _IDAT_MAX]) for i in range(0, len(data), _IDAT_MAX))
        out.append(head + idat + tail)
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode an HxW (grey) or HxWx3 (RGB) uint8 array as PNG (:func:`png_batch` of one)."""
    return png_batch(np.asarray(pixels)[None])[0]
