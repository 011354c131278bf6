"""Reported figures: ``leaderboards/reported.csv`` (printed in papers, transcribed by hand, never computed).

Its location is resolved here, once: :func:`resolve_reported` turns the CLI's choice (a path, the checkout's
default, or none) into a path.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ltbench.errors import LTBenchError

REPORTED_COLUMNS = (
    "paper",
    "table",
    "paper_dataset",
    "paper_column",
    "dataset",
    "row",
    "backbone",
    "setting",
    "metric",
    "value",
    "primary",
)
LEADERBOARDS = (
    Path(__file__).resolve().parent.parent.parent / "leaderboards"
)  # of the checkout this runs from


def default_reported() -> Path:
    """``leaderboards/reported.csv`` of the source tree this package runs from."""
    return LEADERBOARDS / "reported.csv"


def resolve_reported(reported: Path | str | bool | None) -> Path | None:
    """The reported-figures CSV: a path, ``True`` for the checkout's default, ``None``/``False`` for none."""
    if reported is True:
        return default_reported()
    return Path(reported) if reported else None


@dataclass(frozen=True)
class Reported:
    """One reported figure (percent) and where it was printed."""

    value: float
    table: str
    setting: str
    paper: str


def read_reported(path: Path | None) -> list[dict[str, str]]:
    """Rows of the reported-figures CSV (``[]`` when ``path`` is None)."""
    if path is None:
        return []
    path = Path(path)
    if not path.exists():
        raise LTBenchError(
            f"reported figures {path} not found",
            "pass --reported leaderboards/reported.csv from an ltbench checkout, or --no-reported",
        )
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != REPORTED_COLUMNS:
            raise LTBenchError(
                f"{path} has columns {reader.fieldnames}", f"expected {', '.join(REPORTED_COLUMNS)}"
            )
        rows = list(reader)
    for r in rows:
        try:
            float(r["value"])
        except ValueError as e:
            raise LTBenchError(f"{path}: value {r['value']!r} is not a number", "fix that row") from e
    return rows


def primary_reported(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str, str], dict[str, Reported]]:
    """(dataset, row, backbone) → metric → the figure a reproduced entry is compared with (``primary=1``)."""
    out: dict[tuple[str, str, str], dict[str, Reported]] = defaultdict(dict)
    for r in rows:
        if r["primary"] != "1":
            continue
        key = (r["dataset"], r["row"], r["backbone"])
        if r["metric"] in out[key]:
            raise LTBenchError(
                f"two primary reported figures for {key} {r['metric']}", "mark one of them primary=0"
            )
        out[key][r["metric"]] = Reported(float(r["value"]), r["table"], r["setting"], r["paper"])
    return dict(out)
