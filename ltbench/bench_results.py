"""The README's performance table, rendered from the ``make bench`` result files (``benchmarks/results/``): one
column per machine kind, one row per target of the speed issue, each cell the figures its cases recorded and
whether the target is met. The figures live only in the JSON files; ``python -m ltbench.docgen`` copies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

COMPILE = "torch-fp32-compile(prebinarized)"
Cases = list[dict]


def _pick(cases: Cases, cid: str, threads: int | None = None, baseline: str | None = None) -> Cases:
    return [
        c
        for c in cases
        if c["id"] == cid
        and (threads is None or c["threads"] == threads)
        and (baseline is None or c["baseline"] == baseline)
    ]


def _tag(c: dict) -> str:
    """``S1`` from ``S1 3136x128x1152``, ``blk13`` from ``block13 3x3 …``, ``1×1`` for the pointwise conv."""
    head = c["shape"].split()
    if "1x1" in head[:2]:
        return "1×1"
    return head[0].replace("block", "blk")


def _listing(cases: Cases, value: Callable[[dict], float], fmt: str, target: float, ok) -> str:
    if not cases:
        return "—"
    misses = [_tag(c) for c in cases if not ok(value(c), target)]
    body = ", ".join(f"{_tag(c)} {value(c):{fmt}}" for c in cases)
    return f"{body} — " + ("met" if not misses else f"missed on {', '.join(misses)}")


def _t1(cases: Cases, which: str) -> str:
    rows = [c for c in _pick(cases, "T1", 1) if c["shape"].startswith(which)]
    if not rows:
        return "—"
    c = rows[0]
    cell = f"{c['ratio']:.2f}× ({c['ours_s'] * 1e3:.0f} vs {c['baseline_s'] * 1e3:.0f} ms"
    if c.get("bound_ratio"):
        cell += f"; gradient convs alone bound it to {c['bound_ratio']:.2f}×"
    return cell + ") — " + ("met" if c["ratio"] >= 3 else "missed")


def _l1(cases: Cases) -> str:
    rows = _pick(cases, "L1", 1)
    if not rows:
        return "—"
    us = rows[0]["us_per_call"]
    return f"{us:.1f} µs — " + ("met" if us <= 10 else "missed")


def _net(cases: Cases, cid: str) -> str:
    comp, eager = _pick(cases, cid, 1, COMPILE), _pick(cases, cid, 1, "torch-fp32-eager")
    if not comp and not eager:
        return "—"
    parts = []
    if comp:
        c = comp[0]
        parts.append(f"{c['ratio']:.1f}× `torch.compile` (compile {c['compile_s']:.1f} s excluded)")
    if eager:
        parts.append(f"{eager[0]['ratio']:.1f}× eager")
    verdict = "" if cid != "C3" or not comp else " — " + ("met" if comp[0]["ratio"] >= 3 else "missed")
    return ", ".join(parts) + verdict


def _ratio(cases: Cases, cid: str, threads: int, target: float | None) -> str:
    rows = _pick(cases, cid, threads)
    if not rows:
        return "—"
    c = rows[0]
    cell = f"{c['ratio']:.2f}× ({c['ours_s'] * 1e3:.1f} vs {c['baseline_s'] * 1e3:.1f} ms)"
    return cell if target is None else cell + " — " + ("met" if c["ratio"] >= target else "missed")


def _at_least(v: float, t: float) -> bool:
    return v >= t


#: (id, what is measured, target, cell renderer)
ROWS: list[tuple[str, str, str, Callable[[Cases], str]]] = [
    ("T1", "reactnet-a-tiny 8², batch 64, forward + backward, 1 thread, × the eager float-simulated step",
     "≥ 3×", lambda cs: _t1(cs, "reactnet-a-tiny")),
    ("T1", "reactnet-a 32², batch 64, the same", "≥ 3×", lambda cs: _t1(cs, "reactnet-a 32")),
    ("L1", "one packed-layer call (1×1 conv on a 1×1 map), 1 thread", "≤ 10 µs", _l1),
    ("C1", "GEMM S1–S7, 1 thread, % of the measured XOR+POPCNT+ADD limit", "≥ 60 %",
     lambda cs: _listing(_pick(cs, "C1", 1), lambda c: c["pct_of_limit"], ".0f", 60, _at_least)),
    ("C1", "the same at 2 threads, × its 1-thread throughput", "≥ 1.8×",
     lambda cs: _listing(_pick(cs, "C1", 2), lambda c: c["speedup_vs_1_thread"], ".2f", 1.8, _at_least)),
    ("C2", "conv op (ReActNet-A 224² layers, batch 1, 1 thread), × torch fp32 conv + BN + add + RPReLU", "≥ 12×",
     lambda cs: _listing(_pick(cs, "C2", 1), lambda c: c["ratio"], ".1f", 12, _at_least)),
    ("C3", "ReActNet-A 224², batch 1, 1 thread", "≥ 3× compile", lambda cs: _net(cs, "C3")),
    ("C4", "ReActNet-A 32², batch 128, 1 thread", "", lambda cs: _net(cs, "C4")),
    ("B1", "CIFAR-10-LT100 build, 2 threads, × a naive `datasets` writer", "≥ 2×", lambda cs: _ratio(cs, "B1", 2, 2)),
    ("D2", "a digits train batch of 64, batched × image by image", "", lambda cs: _ratio(cs, "D2", 1, None)),
    ("O1", "one Adam step of reactnet-a-tiny, fused × the per-tensor loop", "", lambda cs: _ratio(cs, "O1", 1, None)),
]  # fmt: skip


def machine_files(results: Path) -> list[Path]:
    """The kernel-benchmark result files (``<cpu-model>-<path>.json``), by name."""
    return sorted(p for p in results.glob("*.json") if "limit_bmac_per_cycle_core" in p.read_text("utf-8"))


def _header(d: dict) -> str:
    loads = [c["load_average"] for c in d["cases"] if "load_average" in c]
    load = f"load {min(loads):.1f}–{max(loads):.1f}" if loads else "load not recorded"
    limit = d.get("limit_bmac_per_cycle_core")
    return (
        f"{d['device']}, {d['path']} path, {d['clock_ghz']:.2f} GHz, limit "
        f"{limit:.0f} bMAC/cycle/core, {d.get('date', 'undated')}, {load}"
    )


def performance_table_md(results: Path) -> str:
    """The markdown table: a row per target, a column per machine file under ``results``."""
    data = [json.loads(p.read_text("utf-8")) for p in machine_files(results)]
    lines = ["| id | case | target | " + " | ".join(_header(d) for d in data) + " |"]
    lines.append("|" + "---|" * (3 + len(data)))
    for cid, what, target, cell in ROWS:
        lines.append(f"| {cid} | {what} | {target} | " + " | ".join(cell(d["cases"]) for d in data) + " |")
    return "\n".join(lines) + "\n"
