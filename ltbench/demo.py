"""``ltbench demo``: build digits-LT, train every demo method, print the table, write the leaderboard."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ltbench.builders.build import build
from ltbench.leaderboard import write_leaderboards
from ltbench.progress import console
from ltbench.registry import DATASETS, METHODS
from ltbench.run import run_one
from ltbench.tables import out, results_table

DEMO_METHODS = ("ce",)


def run_demo(data_root: Path, results: Path, lb_out: Path, seeds: int = 1, ir: int = 10) -> None:
    t0 = time.perf_counter()
    spec = DATASETS.get("digits")
    split = Path(data_root) / spec.split_name(ir)
    if not (split / "manifest.json").exists():
        build(spec, ir, data_root)
        console.print(f"built [bold]{split}[/]")
    rs = []
    for method in [m for m in DEMO_METHODS if m in METHODS]:
        for seed in range(seeds):
            path = run_one(method, split.name, seed=seed, data_root=data_root, results=results)
            rs.append(json.loads(path.read_text()))
    out.print(results_table(rs, f"digits-LT (IR {ir}) — accuracy %"))
    paths = write_leaderboards(results, lb_out)
    console.print(f"leaderboard: {paths[-1]}  ({time.perf_counter() - t0:.0f} s)")
