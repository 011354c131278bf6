"""Leaderboard tables of issue 16: the test-agnostic table (rows = methods, columns = SADE distributions),
cost cells (parameters, OPs, measured CPU latency), the teacher reference rows, and the teacher-overlap flag.

Everything is read from the result files' ``test_distributions``, ``cost``, ``teacher_reference`` and
``teacher_overlap`` blocks (kept per run in :attr:`~ltbench.leaderboard.model.Run.extras`). Tables and columns appear only where some
result of the dataset has the block, so boards of older results are unchanged.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ltbench.groups import GROUPS
from ltbench.leaderboard.cells import fmt_stat
from ltbench.leaderboard.model import Board, Entry, Stat, Table
from ltbench.test_dists import sade_order

COST_TITLES = ["params (M)", "OPs (M)", "CPU latency (ms, threads)"]
AGNOSTIC_METRIC = "top1"  # SADE reports top-1 on each test distribution (test_all_cifar.py eval_acc_mic_top1)


def dist_stat(e: Entry, name: str, metric: str = AGNOSTIC_METRIC) -> Stat | None:
    """``metric`` (percent) on distribution ``name`` over the entry's seeds; None when no seed evaluated it."""
    vals, seen = [], 0
    for r in e.runs:
        d = r.extras.get("test_distributions", {}).get(name)
        if d is None:
            continue
        seen += 1
        if d.get(metric) is not None:
            vals.append(100 * float(d[metric]))
    return Stat(vals, seen) if seen else None


def agnostic_table(board: Board, dataset: str) -> Table | None:
    """Rows = (method, backbone) with test-agnostic results; columns = the distributions, SADE's order."""
    es = [
        e for e in board.entries.get(dataset, []) if any(r.extras.get("test_distributions") for r in e.runs)
    ]
    if not es:
        return None
    names = dist_names(es)
    rows = []
    for e in es:
        rows.append([e.row, e.backbone] + [fmt_stat(s) if (s := dist_stat(e, n)) else "—" for n in names])
    skipped = sorted(
        {
            f"{n}: {why}"
            for e in es
            for r in e.runs
            for n, why in r.extras.get("test_distributions_protocol", {}).get("skipped", {}).items()
        }
    )
    notes = [
        "Top-1 accuracy (%) on SADE's test-agnostic distributions (forwardR: long-tailed like training with "
        "head/tail ratio R; backwardR: flipped; uniform: balanced), mean ± std over seeds. Test-time methods "
        "adapt on each distribution's unlabelled images. Protocol: docs/evaluation.md."
    ]
    if skipped:
        notes.append("Not supported by this test split (skipped, never shrunk): " + "; ".join(skipped) + ".")
    return Table(
        f"{dataset}-test-agnostic", f"{dataset}: test-agnostic", ["method", "backbone", *names], rows, notes
    )


def _median(vals: Sequence[float]) -> float | None:
    return statistics.median(vals) if vals else None


def cost_record(e: Entry) -> dict[str, Any] | None:
    """params, OPs, the median CPU latency (ms) over the entry's seeds, their thread counts and inference paths."""
    costs = [r.extras["cost"] for r in e.runs if r.extras.get("cost")]
    if not costs:
        return None
    return {
        "params": costs[0]["params"],
        "ops": costs[0]["ops"],
        "latency_ms": _median([float(c["latency_ms"]) for c in costs]),
        "threads": sorted({int(c["threads"]) for c in costs}),
        "path": sorted({str(c.get("path", "?")) for c in costs}),
    }


def cost_cells(e: Entry) -> list[str]:
    """params and OPs (millions) and median CPU latency over the entry's seeds (with its thread counts)."""
    c = cost_record(e)
    if c is None:
        return ["—"] * len(COST_TITLES)
    lat_text = f"{c['latency_ms']:.3g} ({'/'.join(map(str, c['threads']))}t, {'/'.join(c['path'])})"
    return [f"{c['params'] / 1e6:.3g}", f"{c['ops'] / 1e6:.3g}", lat_text]


def dist_names(es: Sequence[Entry]) -> list[str]:
    """The distributions any of ``es`` was evaluated on, in SADE's order."""
    present = {n for e in es for r in e.runs for n in r.extras.get("test_distributions", {})}
    return sorted(present, key=sade_order)


def overlap_hits(e: Entry) -> list[str]:
    """``weights (corpus)`` of each pretrained weights of the entry's runs known to have seen its test images."""
    return sorted(
        {
            f"{w['weights']} ({w['corpus']})"
            for r in e.runs
            for w in r.extras.get("teacher_overlap", {}).get("weights", [])
            if w.get("overlap")
        }
    )


#: The reference table's columns: the teacher's accuracy per group and top-1 (%).
REFERENCE_COLUMNS = ("avg", *GROUPS, "top1")


def _references(e: Entry) -> list[dict[str, Any]]:
    return [r.extras["teacher_reference"] for r in e.runs if r.extras.get("teacher_reference")]


def reference_stats(e: Entry) -> dict[str, Stat] | None:
    """The calibrated FP teacher's own accuracy (%) per reference column over the entry's seeds; None without
    one."""
    refs = _references(e)
    if not refs:
        return None
    return {
        m: Stat([100 * float(x["metrics"][m]) for x in refs if x["metrics"].get(m) is not None], len(refs))
        for m in REFERENCE_COLUMNS
    }


COST_NOTE = (
    "Cost: parameters (millions); OPs = binary MACs / 64 + FP MACs per image (millions); CPU latency = median over "
    "seeds of each run's median of repeated batch-1 predictions on its own machine, with torch's thread count (t) and "
    "the inference path (packed XNOR kernels or float)."
)


def overlap_flag(e: Entry) -> str:
    """The flag text when a run's teacher or pretrained weights are known to have seen the test images."""
    hits = overlap_hits(e)
    return f"teacher saw test images: {', '.join(hits)}" if hits else ""


def reference_table(board: Board, dataset: str) -> Table | None:
    """The calibrated FP teachers' own accuracy beside the students that distil from them."""
    rows = []
    for e in board.entries.get(dataset, []):
        stats = reference_stats(e)
        if stats is None:
            continue
        cells = [f"teacher of {e.row} ({_references(e)[0].get('encoder')}, FP)", e.backbone]
        cells += [fmt_stat(stats[m]) for m in REFERENCE_COLUMNS]
        cells.append(fmt_stat(e.stat("avg")) if e.stat("avg") else "—")
        rows.append(cells)
    if not rows:
        return None
    return Table(
        f"{dataset}-reference",
        f"{dataset}: teacher reference rows",
        ["reference", "student backbone", *REFERENCE_COLUMNS, "student avg"],
        rows,
        ["The calibrated full-precision teacher measured on the test split after calibration (%), mean ± std "
         "over the student's seeds; the last column is the student's own avg, for the gap distillation closes."],
    )  # fmt: skip


def has_cost(es: Sequence[Entry]) -> bool:
    return any(r.extras.get("cost") for e in es for r in e.runs)


def extra_tables(board: Board, dataset: str) -> list[Table]:
    """The dataset page's tables after the leaderboard: test-agnostic, then teacher reference rows."""
    return [t for t in (agnostic_table(board, dataset), reference_table(board, dataset)) if t is not None]
