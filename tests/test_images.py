"""PNG encoding of raw-pixel sources: ``png_batch`` writes exactly the bytes Pillow's PNG writer writes (the
oracle is ``Image.save(format="PNG")`` itself), on every row filter and chunk layout; the writer and pool
subsets read through ``Pool.read_batch`` and give the bytes of per-image reads."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
from ltbench.builders.images import png_batch, png_bytes
from ltbench.builders.parquet import write_split
from ltbench.builders.readers import subset
from ltbench.builders.spec import Pool
from PIL import Image


def pillow_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        out.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def filter_types(png: bytes, row_bytes: int) -> set[int]:
    raw = zlib.decompress(b"".join(d for t, d in chunks(png) if t == b"IDAT"))
    return set(raw[:: row_bytes + 1])


def images(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Noise, gradients, stripes and flat images: rows where each of None, Sub, Up and Paeth wins, and ties."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for k in range(n):
        kind = k % 7
        if kind == 0:
            img = rng.integers(0, 256, shape)
        elif kind == 1:
            img = (xx * rng.uniform(-9, 9) + yy * rng.uniform(-9, 9) + rng.uniform(0, 255)) % 256
        elif kind == 2:
            img = np.broadcast_to((xx * 37) % 256, (h, w))  # identical rows: Up gives 0
        elif kind == 3:
            img = np.full((h, w), rng.integers(0, 256))  # flat: Sub/Up tie after row 0
        elif kind == 4:
            img = np.broadcast_to(((yy * 29) % 256)[:, :1], (h, w))  # flat rows: Sub gives 0
        elif kind == 5:
            img = (xx + yy) * rng.integers(1, 7)  # equal slopes: Up, Sub and Paeth tie on row 1
        else:  # coarse steps on a gradient: many Paeth distance ties (|p - a| = |p - b|, a != b)
            img = 4 * rng.integers(0, 3, (h, w)) + 8 * (xx + yy)
        img = np.asarray(img, dtype=np.float64)
        if len(shape) == 3 and img.ndim == 2:
            img = np.stack([img, (img + 40) % 256, 255 - img], -1) if kind else np.asarray(img)
        out.append(np.asarray(img, dtype=np.uint8).reshape(shape))
    return np.stack(out)


@pytest.mark.parametrize("shape", [(32, 32, 3), (8, 8), (5, 17, 3), (1, 1), (1, 9, 3), (9, 1)])
def test_png_batch_is_pillow_bytes(shape):
    stack = images(np.random.default_rng(0), shape, 41)  # 41 > the 16-image filtering chunk: spans chunks
    ours = png_batch(stack)
    assert ours == [pillow_png(x) for x in stack]
    assert [png_bytes(x) for x in stack[:3]] == ours[:3]
    for png, x in zip(ours[:5], stack[:5], strict=True):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), x)


def test_every_row_filter_is_exercised():
    stack = images(np.random.default_rng(1), (32, 32, 3), 30)
    seen = set().union(*(filter_types(p, 32 * 3) for p in png_batch(stack)))
    assert seen == {0, 1, 2, 4}  # None, Sub, Up, Paeth (Average: Pillow's ``optimize`` only)


def test_large_images_split_idat_as_pillow():
    x = np.random.default_rng(2).integers(0, 256, (200, 160, 3), dtype=np.uint8)  # ≈ 96 KB compressed
    (png,) = png_batch(x[None])
    idat = [len(d) for t, d in chunks(png) if t == b"IDAT"]
    assert len(idat) == 2 and idat[0] == 65536
    assert png == pillow_png(x)


@pytest.mark.parametrize("shape", [(2, 4, 4, 4), (4, 4), (2, 0, 4)])
def test_png_batch_rejects_other_layouts(shape):
    with pytest.raises(ValueError, match="png_batch takes"):
        png_batch(np.zeros(shape, dtype=np.uint8))


def _pixel_pool(n: int = 300) -> Pool:
    data = images(np.random.default_rng(3), (16, 16, 3), n)
    return Pool(
        labels=np.arange(n, dtype=np.int64) % 10,
        keys=[str(i) for i in range(n)],
        read=lambda i: png_bytes(data[i]),
        thread_safe=True,
        read_many=lambda idx: png_batch(data[np.asarray(idx, dtype=np.int64)]),
    )


def test_subset_reads_its_rows_in_batches():
    pool = _pixel_pool()
    idx = np.array([7, 3, 299, 3, 0])
    sub = subset(pool, idx)
    assert sub.read_many is not None
    assert sub.read_batch([4, 0, 2]) == [pool.read(0), pool.read(7), pool.read(299)]


@pytest.mark.parametrize("workers", [1, 3])
def test_writer_through_read_many_matches_per_image_reads(tmp_path, workers):
    pool = _pixel_pool()
    idx = np.arange(300)[::-1]
    files = {}
    for name, p in (("batch", pool), ("single", dataclasses.replace(pool, read_many=None))):
        (tmp_path / name).mkdir()
        out = write_split(tmp_path / name, "train", p, idx, ["c"] * 10, workers=workers)
        files[name] = [(tmp_path / name / f).read_bytes() for f in out]
    assert files["batch"] == files["single"]
