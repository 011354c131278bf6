"""Image encoding helpers for raw-pixel sources (stored as PNG, losslessly and deterministically)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode an HxW (grey) or HxWx3 (RGB) uint8 array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
