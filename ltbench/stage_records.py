"""What each stage of a method trained on, and what any selection step looked at — the provenance records a
result carries (``records["stages"]``, ``records["selection"]``).

``stages``: one entry per training stage, in order: ``{"name", "split", "train_images", "sampler", "epochs"}``
plus stage-specific keys. ``selection``: ``{"what": <the selected quantity>, "on": <where>}`` with ``on`` one of
:data:`SELECTION_ON`; ``"test"`` means the choice saw test labels, which a leaderboard must flag.
"""

from __future__ import annotations

from typing import Any

SELECTION_ON = ("val", "train", "test", "none")


def add_stage(
    records: dict[str, Any], name: str, dataset, cfg, split: str = "train", **extra: Any
) -> dict[str, Any]:
    """Append the record of a stage trained on ``dataset`` (``split`` of the build) with ``cfg``."""
    entry = {
        "name": name,
        "split": split,
        "train_images": len(dataset),
        "sampler": getattr(cfg, "sampler", None),
        "epochs": getattr(cfg, "epochs", None),
        **extra,
    }
    records.setdefault("stages", []).append(entry)
    return entry


def set_selection(records: dict[str, Any], what: str, on: str, **extra: Any) -> dict[str, Any]:
    """Record what a selection step chose and on which data (``on`` in :data:`SELECTION_ON`)."""
    if on not in SELECTION_ON:
        raise ValueError(f"selection on {on!r}; expected one of {SELECTION_ON}")
    records["selection"] = {"what": what, "on": on, **extra}
    return records["selection"]
