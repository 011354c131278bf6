"""The paper's tables as data: ``leaderboards/paper-tables.yaml`` read into suites (datasets, grouping rule,
Average row) and table specs. No board here: :mod:`ltbench.leaderboard.paper_tables` renders them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ltbench.errors import LTBenchError
from ltbench.leaderboard.reported import LEADERBOARDS

SPEC_PATH = LEADERBOARDS / "paper-tables.yaml"
KINDS = ("matrix", "means", "groups")


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[str, ...]
    mean: str  # the reported.csv dataset of the paper's Average row
    groups: str


@dataclass(frozen=True)
class Spec:
    backbone: str
    suites: dict[str, Suite]
    tables: tuple[dict[str, Any], ...]

    def suite_of(self, dataset: str) -> Suite | None:
        return next((s for s in self.suites.values() if dataset in s.datasets), None)

    def rows(self) -> set[str]:
        """Every method row any table names."""
        out: set[str] = set()
        for t in self.tables:
            out |= {self.column(c)[0] for c in t.get("columns", ())} | set(t.get("rows", ()))
            out |= {t["row"]} if "row" in t else set()
        return out

    def column(self, text: str) -> tuple[str, str]:
        """``row`` or ``row@backbone`` → (row, backbone)."""
        row, _, bb = str(text).partition("@")
        return row, bb or self.backbone


@cache
def load_spec(path: Path = SPEC_PATH) -> Spec:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    suites = {k: Suite(k, tuple(v["datasets"]), v["mean"], v["groups"]) for k, v in data["suites"].items()}
    for t in data["tables"]:
        if t.get("kind") not in KINDS:
            raise LTBenchError(f"{path}: table {t.get('id')} has kind {t.get('kind')!r}", f"use {KINDS}")
        for s in [t["suite"]] if "suite" in t else t.get("suites", []):
            if s not in suites:
                raise LTBenchError(f"{path}: table {t['id']} names suite {s!r}", f"use {sorted(suites)}")
    return Spec(data["backbone"], suites, tuple(data["tables"]))


def paper_groups_by_dataset(spec: Spec | None = None) -> dict[str, str]:
    """dataset → the grouping rule of the paper's figures on it (the rule of its suite)."""
    return {d: s.groups for s in (spec or load_spec()).suites.values() for d in s.datasets}


def suites(spec: Spec | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(name, datasets) of each suite, for the index's partial-suite list."""
    spec = spec or load_spec()
    return [(s.name, s.datasets) for s in spec.suites.values()]
