"""Machine-readable renderers: ``leaderboard.csv``, ``leaderboard.json`` (one record per entry) and LaTeX."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from ltbench.leaderboard.eval_views import (
    AGNOSTIC_METRIC,
    cost_record,
    dist_names,
    dist_stat,
    extra_tables,
    overlap_hits,
    reference_stats,
)
from ltbench.leaderboard.model import COLUMNS, EXTRA, Board, Entry, Stat, Table
from ltbench.leaderboard.paper_tables import paper_tables
from ltbench.leaderboard.views import dataset_table


def _num(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _stat(s: Stat | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": _num(s.mean), "std": _num(s.std), "n": s.n}


def entry_record(e: Entry) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "dataset": e.dataset,
        "row": e.row,
        "backbone": e.backbone,
        "setting": asdict(e.setting) if e.setting else None,
        "grouping": e.rule,
        "seeds": e.seeds,
        "missing_seeds": e.missing_seeds,
        "selection_on_test": e.selection_on_test,
        "config_hash": e.runs[0].config_hash if e.runs else None,
        "commits": sorted({str(r.environment.get("git_commit")) for r in e.runs}),
    }
    cost = cost_record(e)
    rec["cost"] = cost and {**cost, "latency_ms": _num(cost["latency_ms"])}
    rec["test_distributions"] = {n: _stat(dist_stat(e, n)) for n in dist_names([e])}
    rec["teacher_overlap"] = overlap_hits(e)
    if (ref := reference_stats(e)) is not None:
        rec["teacher_reference"] = {m: _stat(st) for m, st in ref.items()}
    for m in COLUMNS + EXTRA:
        s = e.stat(m)
        summ = s.summary if s else None
        rep = e.reported.get(m)
        rec[m] = {
            "mean": _num(summ.mean if summ else None),
            "std": _num(summ.std if summ else None),
            "ci95": [_num(summ.lo), _num(summ.hi)] if summ and summ.lo is not None else None,
            "n": s.n if s else 0,
            "per_seed": [_num(v) for v in s.values] if s else [],
            "reported": rep.value if rep else None,
            "reported_table": rep.table if rep else None,
            "delta": _num(e.delta(m)),
        }
        if m in COLUMNS:
            got = e.vs_baseline(m)
            rec[m]["vs_ce"] = (
                None
                if got is None or got[0].mean is None
                else {
                    "mean": _num(got[0].mean),
                    "ci95": [_num(got[0].lo), _num(got[0].hi)] if got[0].lo is not None else None,
                    "seeds": got[1],
                }
            )
    return rec


def csv_text(board: Board) -> str:
    buf = io.StringIO()
    cols = ["dataset", "row", "backbone", "setting", "grouping", "seeds", "missing_seeds", "config_hash"]
    for m in COLUMNS:
        cols += [f"{m}_mean", f"{m}_std", f"{m}_ci_lo", f"{m}_ci_hi", f"{m}_n", f"{m}_reported", f"{m}_delta"]
        cols += [f"{m}_vs_ce", f"{m}_vs_ce_lo", f"{m}_vs_ce_hi"]
    dists = dist_names([e for es in board.entries.values() for e in es])
    cols += [f"{m}_mean" for m in EXTRA] + ["selection_on_test"]
    cols += ["params", "ops", "latency_ms", "latency_threads", "latency_path", "teacher_overlap"]
    cols += [f"{AGNOSTIC_METRIC}_{n}" for n in dists]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for d in sorted(board.entries):
        for e in board.entries[d]:
            rec = entry_record(e)
            row = [d, e.row, e.backbone, e.setting.tags() if e.setting else "", rec["grouping"] or ""]
            row += [" ".join(map(str, rec["seeds"])), " ".join(map(str, rec["missing_seeds"]))]
            row += [rec["config_hash"] or ""]
            for m in COLUMNS:
                x = rec[m]
                lo, hi = x["ci95"] or (None, None)
                vs = x["vs_ce"] or {}
                vlo, vhi = vs.get("ci95") or (None, None)
                row += [
                    x["mean"],
                    x["std"],
                    lo,
                    hi,
                    x["n"],
                    x["reported"],
                    x["delta"],
                    vs.get("mean"),
                    vlo,
                    vhi,
                ]
            row += [rec[m]["mean"] for m in EXTRA] + [" ".join(rec["selection_on_test"])]
            cost = rec["cost"] or {}
            row += [cost.get("params"), cost.get("ops"), cost.get("latency_ms")]
            row += [" ".join(map(str, cost.get("threads", []))), " ".join(cost.get("path", []))]
            row += ["; ".join(rec["teacher_overlap"])]
            row += [(rec["test_distributions"].get(n) or {}).get("mean") for n in dists]
            w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def json_text(board: Board) -> str:
    data = {
        "generated_by": "ltbench leaderboard",
        "entries": [entry_record(e) for d in sorted(board.entries) for e in board.entries[d]],
    }
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


_LATEX = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}"}


def latex_escape(s: str) -> str:
    s = "".join(_LATEX.get(ch, ch) for ch in s)
    for a, b in (
        ("±", r"$\pm$"),
        ("Δ", r"$\Delta$"),
        ("—", "--"),
        ("→", r"$\to$"),
        ("`", ""),
        ("·", r"$\cdot$"),
    ):
        s = s.replace(a, b)
    return s


def latex_table(t: Table) -> str:
    lines = [
        "\\begin{table}[t]",
        "\\centering\\small",
        f"\\caption{{{latex_escape(t.title)}}}",
        f"\\label{{tab:{t.key}}}",
        "\\begin{tabular}{l" + "r" * (len(t.columns) - 1) + "}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in t.columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in r) + " \\\\" for r in t.rows]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def latex_text(board: Board) -> str:
    head = "% generated by `ltbench leaderboard`: do not edit; needs \\usepackage{booktabs}\n"
    tables = [t for d in sorted(board.entries) for t in (dataset_table(board, d), *extra_tables(board, d))]
    tables += paper_tables(board)
    return head + "\n".join(latex_table(t) for t in tables)
