"""ltbench: long-tailed recognition benchmark suite and dataset builder.

Heavy libraries (torch, datasets) are imported lazily so that ``ltbench --help`` answers at once.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_split"]


def load_split(name_or_path_or_repo_id: str, split: str | None = None, **kwargs):
    """Return a built LT split as a ``datasets`` object, from a local build or the Hugging Face Hub."""
    from ltbench.data import load_split as _load

    return _load(name_or_path_or_repo_id, split=split, **kwargs)
