"""Build (on a GPU machine, at first use) the CUDA XNOR extension and register its ops for ``cuda``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
_state: dict[str, object] = {}


def status() -> tuple[bool, str]:
    """(True, "") when the CUDA kernels are built and registered; else (False, why)."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return False, "CUDA kernel not built yet"
