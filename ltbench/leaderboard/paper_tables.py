"""The paper's tables, ours beside reported, from the data in ``leaderboards/paper-tables.yaml``.

Cells are ``ours / paper``. Ours is an entry grouped by the rule the authors' code used on that suite (issue 13:
``authors`` on the 12 small sets, ``shots`` on the large ones); where both split protocols ran, the ``authors``
protocol. A row run with another grouping rule is never compared with the paper's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ltbench.leaderboard.cells import pct
from ltbench.leaderboard.model import Board, Table
from ltbench.leaderboard.paper_spec import Spec, Suite, load_spec
from ltbench.leaderboard.reported import Reported


def _ours_paper(ours: float | None, theirs: Reported | None, suffix: str = "") -> str:
    if ours is None and theirs is None:
        return "—"
    return f"{pct(ours)}{suffix} / {pct(theirs.value if theirs else None)}"


def _ours(board: Board, suite: Suite, dataset: str, row: str, bb: str, metric: str) -> float | None:
    e = board.find(dataset, row, bb, groups=suite.groups)
    return e.mean(metric) if e else None


def _mean_cell(board: Board, suite: Suite, row: str, bb: str, metric: str) -> str:
    vals = [v for d in suite.datasets if (v := _ours(board, suite, d, row, bb, metric)) is not None]
    n = len(suite.datasets)
    ours = float(np.mean(vals)) if vals else None
    suffix = f" ({len(vals)}/{n})" if vals and len(vals) < n else ""
    return _ours_paper(ours, board.reported.get((suite.mean, row, bb), {}).get(metric), suffix)


def _note(spec: Spec, t: dict[str, Any], text: str) -> list[str]:
    return [text] + ([" ".join(str(t["note"]).split())] if t.get("note") else [])


def _groups_note(suites: Sequence[Suite]) -> str:
    rules = ", ".join(f"`{s.groups}` on {s.name}" for s in suites)
    return f"Ours only from results grouped as the paper's authors did ({rules}); — = not run / not reported."


def matrix_table(board: Board, spec: Spec, t: dict[str, Any]) -> Table:
    """Datasets × columns cells ``ours / paper`` for the table's metric, with an Average row."""
    suite, metric = spec.suites[t["suite"]], t.get("metric", "avg")
    cols = [spec.column(c) for c in t["columns"]]
    if t.get("extra_columns"):
        ran = {
            (e.row, e.backbone)
            for d in suite.datasets
            for e in board.paper_entries(d)
            if e.backbone == spec.backbone and "[" not in e.row and e.rule == suite.groups
        }
        cols += sorted(ran - set(cols))
    names = [row if bb == spec.backbone else f"{row} ({bb})" for row, bb in cols]
    rows = [
        [d]
        + [
            _ours_paper(_ours(board, suite, d, r, b, metric), board.reported.get((d, r, b), {}).get(metric))
            for r, b in cols
        ]
        for d in suite.datasets
    ]
    rows.append(["Average"] + [_mean_cell(board, suite, r, b, metric) for r, b in cols])
    n = len(suite.datasets)
    text = (
        f"{metric} accuracy (%), cells `ours / paper` (ours = mean over seeds). Average over the {n} sets; "
        f"`(k/{n})` marks an average over only k sets. " + _groups_note([suite])
    )
    return Table(t["id"], t["title"], ["dataset", *names], rows, _note(spec, t, text))


def means_table(board: Board, spec: Spec, t: dict[str, Any]) -> Table:
    """Rows × metrics, each cell the mean over the suite's sets of each set's mean over seeds."""
    suite = spec.suites[t["suite"]]
    rows = [
        [row] + [_mean_cell(board, suite, row, spec.backbone, m) for m in t["metrics"]] for row in t["rows"]
    ]
    n = len(suite.datasets)
    text = (
        f"Mean over the {n} sets of each set's mean over seeds, cells `ours / paper`; `(k/{n})` = over "
        "only k sets. " + _groups_note([suite])
    )
    return Table(t["id"], t["title"], ["variant", *t["metrics"]], rows, _note(spec, t, text))


def groups_table(board: Board, spec: Spec, t: dict[str, Any]) -> Table:
    """Per dataset of the suites: the table's metrics of one row, ``ours / paper``."""
    row, bb = spec.column(t["row"])
    suites = [spec.suites[s] for s in t["suites"]]
    rows = []
    for suite in suites:
        for d in suite.datasets:
            rep = board.reported.get((d, row, bb), {})
            rows.append(
                [d] + [_ours_paper(_ours(board, suite, d, row, bb, m), rep.get(m)) for m in t["metrics"]]
            )
    text = "Accuracy (%), cells `ours / paper`. " + _groups_note(suites)
    return Table(t["id"], t["title"], ["dataset", *t["metrics"]], rows, _note(spec, t, text))


RENDER = {"matrix": matrix_table, "means": means_table, "groups": groups_table}


def paper_tables(board: Board, spec: Spec | None = None) -> list[Table]:
    """Every table of the spec, in its order."""
    spec = spec or load_spec()
    return [RENDER[t["kind"]](board, spec, t) for t in spec.tables]
