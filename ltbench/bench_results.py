"""The README's performance table, rendered from the ``make bench`` result files (``benchmarks/results/``): one
column per machine kind, one row per target of the speed issue, each cell the figures its cases recorded and
whether the target is met. The figures live only in the JSON files; ``python -m ltbench.docgen`` copies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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


class Target(NamedTuple):
    """One of the issue's targets: ``value`` is a floor (``≥``) or, with ``at_most``, a ceiling (``≤``)."""

    value: float
    unit: str
    at_most: bool = False
    what: str = ""

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.value:g}{self.unit}{self.what}"

    def met(self, v: float) -> bool:
        return v <= self.value if self.at_most else v >= self.value


def _verdict(ok: bool) -> str:
    return " — met" if ok else " — missed"


def _listing(cases: Cases, value: Callable[[dict], float], fmt: str, t: Target) -> str:
    if not cases:
        return "—"
    misses = [_tag(c) for c in cases if not t.met(value(c))]
    body = ", ".join(f"{_tag(c)} {value(c):{fmt}}" for c in cases)
    return f"{body} — " + ("met" if not misses else f"missed on {', '.join(misses)}")


def _t1(cases: Cases, which: str, t: Target) -> str:
    rows = [c for c in _pick(cases, "T1", 1) if c["shape"].startswith(which)]
    if not rows:
        return "—"
    c = rows[0]
    cell = f"{c['ratio']:.2f}× ({c['ours_s'] * 1e3:.0f} vs {c['baseline_s'] * 1e3:.0f} ms"
    if c.get("bound_ratio"):
        cell += f"; gradient convs alone bound it to {c['bound_ratio']:.2f}×"
    return cell + ")" + _verdict(t.met(c["ratio"]))


def _l1(cases: Cases, t: Target) -> str:
    rows = _pick(cases, "L1", 1)
    if not rows:
        return "—"
    us = rows[0]["us_per_call"]
    return f"{us:.1f} µs" + _verdict(t.met(us))


def _net(cases: Cases, cid: str, t: Target | None) -> str:
    """Against ``torch.compile`` (the target's baseline) and eager."""
    comp, eager = _pick(cases, cid, 1, COMPILE), _pick(cases, cid, 1, "torch-fp32-eager")
    if not comp and not eager:
        return "—"
    parts = []
    if comp:
        c = comp[0]
        parts.append(f"{c['ratio']:.1f}× `torch.compile` (compile {c['compile_s']:.1f} s excluded)")
    if eager:
        parts.append(f"{eager[0]['ratio']:.1f}× eager")
    return ", ".join(parts) + (_verdict(t.met(comp[0]["ratio"])) if t and comp else "")


def _c1_threads(cases: Cases, t: Target) -> str:
    """C1's 2-thread scaling; files written before its paired rounds (``paired_s``) timed 1 and 2 threads in
    separate passes, minutes apart and on different clocks, and say so."""
    rows = _pick(cases, "C1", 2)
    cell = _listing(rows, lambda c: c["speedup_vs_1_thread"], ".2f", t)
    return cell + (
        " (1 and 2 threads timed in separate passes)" if any("paired_s" not in c for c in rows) else ""
    )


def _ratio(cases: Cases, cid: str, threads: int, t: Target | None) -> str:
    rows = _pick(cases, cid, threads)
    if not rows:
        return "—"
    c = rows[0]
    cell = f"{c['ratio']:.2f}× ({c['ours_s'] * 1e3:.1f} vs {c['baseline_s'] * 1e3:.1f} ms)"
    return cell + (_verdict(t.met(c["ratio"])) if t else "")


#: (id, what is measured, the issue's target or None, cell renderer given the target)
ROWS: list[tuple[str, str, Target | None, Callable[[Cases, Target | None], str]]] = [
    ("T1", "reactnet-a-tiny 8², batch 64, forward + backward, 1 thread, × the eager float-simulated step",
     Target(3, "×"), lambda cs, t: _t1(cs, "reactnet-a-tiny", t)),
    ("T1", "reactnet-a 32², batch 64, the same", Target(3, "×"), lambda cs, t: _t1(cs, "reactnet-a 32", t)),
    ("L1", "one packed-layer call (1×1 conv on a 1×1 map), 1 thread", Target(10, " µs", at_most=True), _l1),
    ("C1", "GEMM S1–S7, 1 thread, % of the measured XOR+POPCNT+ADD limit", Target(60, " %"),
     lambda cs, t: _listing(_pick(cs, "C1", 1), lambda c: c["pct_of_limit"], ".0f", t)),
    ("C1", "the same at 2 threads, × its 1-thread throughput", Target(1.8, "×"), _c1_threads),
    ("C2", "conv op (ReActNet-A 224² layers, batch 1, 1 thread), × torch fp32 conv + BN + add + RPReLU",
     Target(12, "×"), lambda cs, t: _listing(_pick(cs, "C2", 1), lambda c: c["ratio"], ".1f", t)),
    ("C3", "ReActNet-A 224², batch 1, 1 thread", Target(3, "×", what=" compile"), lambda cs, t: _net(cs, "C3", t)),
    ("C4", "ReActNet-A 32², batch 128, 1 thread", None, lambda cs, t: _net(cs, "C4", t)),
    ("B1", "CIFAR-10-LT100 build, 2 threads, × a naive `datasets` writer", Target(2, "×"),
     lambda cs, t: _ratio(cs, "B1", 2, t)),
    ("D2", "a digits train batch of 64, batched × image by image", None, lambda cs, t: _ratio(cs, "D2", 1, t)),
    ("O1", "one Adam step of reactnet-a-tiny, fused × the per-tensor loop", None,
     lambda cs, t: _ratio(cs, "O1", 1, t)),
]  # fmt: skip


def machine_files(results: Path) -> list[dict]:
    """The kernel-benchmark result files (``<cpu-model>-<path>.json``, those with a measured limit), by name."""
    docs = (json.loads(p.read_text("utf-8")) for p in sorted(results.glob("*.json")))
    return [d for d in docs if "limit_bmac_per_cycle_core" in d]


def _header(d: dict) -> str:
    loads = [c["load_average"] for c in d["cases"] if "load_average" in c]
    load = f"load {min(loads):.1f}–{max(loads):.1f}" if loads else "load not recorded"
    limit = d.get("limit_bmac_per_cycle_core")
    ident = f" (family {d['cpu_family_model'].replace('-', ' model ')})" if d.get("cpu_family_model") else ""
    return (
        f"{d['device']}{ident}, {d['path']} path, {d['clock_ghz']:.2f} GHz, limit "
        f"{limit:.0f} bMAC/cycle/core, {d.get('date', 'undated')}, {load}"
    )


def performance_table_md(results: Path) -> str:
    """The markdown table: a row per target, a column per machine file under ``results``."""
    data = machine_files(results)
    lines = ["| id | case | target | " + " | ".join(_header(d) for d in data) + " |"]
    lines.append("|" + "---|" * (3 + len(data)))
    for cid, what, target, cell in ROWS:
        cells = " | ".join(cell(d["cases"], target) for d in data)
        lines.append(f"| {cid} | {what} | {target or ''} | {cells} |")
    return "\n".join(lines) + "\n"
