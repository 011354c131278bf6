"""``ltbench demo``: build digits-LT, train every registered method (and its declared variants) on it, then
regenerate the leaderboards and plots and say where they are.

The plan comes from the METHODS registry, so it grows as methods land. Registry meta read here:
``demo=False`` leaves a method out; ``variants=(...)`` lists values of the config's declared row field
(``Config.ROW_FIELD``, CANDLE's ``variant``) to run as extra rows (the field's default is the method's main
row, e.g. ``candle``; the others are filed as ``candle[cd]``...). The backbone is ``reactnet-a-tiny`` (binary, as the paper's setting) unless told otherwise;
each method's own ``binary/digits`` / ``official/digits`` recipe sets its epochs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.markup import escape

from ltbench.errors import LTBenchError
from ltbench.progress import console, make_progress, report, set_label
from ltbench.registry import DATASETS, METHODS
from ltbench.results import result_path

DEMO_BACKBONE = "reactnet-a-tiny"  # binary, 8x8 input natively (DESIGN: demo and end-to-end runs use it)


@dataclasses.dataclass(frozen=True)
class DemoRun:
    method: str
    variant: str | None
    seed: int
    field: str | None = None  # the config's row field the variant sets (Config.ROW_FIELD)

    @property
    def label(self) -> str:
        return f"{self.method}[{self.variant}]" if self.variant else self.method

    @property
    def sets(self) -> dict[str, str] | None:
        return {self.field: self.variant} if self.variant and self.field else None


def default_jobs(device: str = "auto") -> int:
    """On CPU one worker per core, up to 4: small models train faster as parallel 1-thread runs than as one
    multi-threaded run (which also slows badly when its cores are shared). On a GPU, one."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _executor(jobs: int):
    if jobs == 1:
        return _Inline()
    return ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(jobs,)
    )


def _init_worker(jobs: int) -> None:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


def _run(
    method, dataset, backbone, seed, sets, data_root, results, device, test_dist
) -> tuple[float, str | None]:
    """One demo row (in a worker process): seconds taken and the traceback if it failed."""
    from ltbench.run import run_one

    t = time.perf_counter()
    set_label(DemoRun(method, (sets or {}).get("variant"), seed).label + f" seed {seed}")
    try:
        run_one(
            method,
            dataset,
            backbone,
            seed,
            sets,
            data_root=data_root,
            results=results,
            device=device,
            test_dist=test_dist,
        )
        return time.perf_counter() - t, None
    except Exception:  # a broken method must not hide the others' results
        return time.perf_counter() - t, traceback.format_exc()
    finally:
        set_label("")


class _Inline:
    """A stand-in executor that runs each job at submit time (``--jobs 1``: no worker processes)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut


def demo_plan(seeds: int = 1, only: Sequence[str] = ()) -> list[DemoRun]:
    """Every (method, variant, seed) the demo runs: registered methods without ``demo=False``, by name."""
    names = list(only) or [e.name for e in METHODS.entries() if e.meta.get("demo", True) is not False]
    plan = []
    for name in names:
        entry = METHODS.entry(name)
        field = entry.obj.Config.ROW_FIELD
        fields = {f.name: f for f in dataclasses.fields(entry.obj.Config)}
        default = fields[field].default if field else None
        extra = [v for v in entry.meta.get("variants", ()) if v != default] if field else []
        plan += [DemoRun(name, v, s, field) for v in [None, *extra] for s in range(seeds)]
    return plan


def longest_first(plan: list[DemoRun], results: Path, split: str, backbone: str | None) -> list[DemoRun]:
    """``plan`` with the rows a previous demo in ``results`` timed (its result files' ``timings``) longest first,
    so that no worker idles while another runs a long row at the end; rows without a timing (maybe long) go
    first; ties keep plan order. A first demo runs in plan order."""

    def seconds(r: DemoRun) -> float:
        if backbone is None:
            return math.inf
        try:
            t = json.loads(result_path(results, split, r.label, backbone, r.seed).read_text())["timings"]
            return float(sum(t.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return math.inf

    return sorted(plan, key=lambda r: -seconds(r))


def run_demo(
    data_root: Path,
    results: Path,
    lb_out: Path,
    seeds: int = 1,
    ir: int = 10,
    only: Sequence[str] = (),
    bench_dir: Path | None = Path("benchmarks/results"),
    device: str = "auto",
    backbone: str | None = DEMO_BACKBONE,
    jobs: int | None = None,
    test_dist: str | None = None,
) -> list[Path]:
    """Run the plan, then write plots and leaderboards (md + html) under ``lb_out``; return the leaderboard
    files. ``test_dist`` (as ``ltbench run --test-dist``) also evaluates every run on SADE's test-agnostic
    distributions, which adds the leaderboard's test-agnostic table. Runs that fail are reported (tracebacks in ``<results>/demo-failures.log``) and the demo raises
    after the leaderboard is written, so the others still count."""
    from ltbench.builders.build import build
    from ltbench.leaderboard import build_board, compact_table
    from ltbench.leaderboard.markdown import page_name
    from ltbench.regenerate import regenerate
    from ltbench.results import read_results
    from ltbench.tables import out, rich_table

    if seeds < 1:
        raise LTBenchError(f"--seeds {seeds}", "give at least 1 seed")
    t0 = time.perf_counter()
    spec = DATASETS.get("digits")
    split = Path(data_root) / spec.split_name(ir)
    if not (split / "manifest.json").exists():
        build(spec, ir, data_root)
        console.print(f"built [bold]{split}[/]")
    if test_dist:
        from ltbench.data import open_split
        from ltbench.result_extras import plan_test_dists

        # a bad name fails once, before anything trains
        plan_test_dists(open_split(split.name, data_root), test_dist)
    plan = longest_first(demo_plan(seeds, only), results, split.name, backbone)
    Path(results).mkdir(parents=True, exist_ok=True)
    failures: list[tuple[DemoRun, str]] = []
    timings: dict[str, float] = {}
    # the digits teacher (CANDLE, DiVE*) is trained by the first row that needs it, while the other worker runs;
    # rows that need it meanwhile wait on its cache lock (ltbench.teachers.digits_teacher)
    jobs = max(1, min(jobs or default_jobs(device), len(plan)))
    args = [
        (r.method, split.name, backbone, r.seed, r.sets, data_root, results, device, test_dist) for r in plan
    ]
    with make_progress() as prog, _executor(jobs) as pool:
        bar = prog.add_task(
            f"demo on {split.name} ({jobs} worker{'s' if jobs > 1 else ''})", total=len(plan), info=""
        )
        futures = {pool.submit(_run, *a): r for a, r in zip(args, plan, strict=True)}
        for finished, fut in enumerate(as_completed(futures), 1):
            run = futures[fut]
            seconds, error = fut.result()
            timings[run.label] = timings.get(run.label, 0.0) + seconds
            if error:
                failures.append((run, error))
                console.print(
                    f"[red]failed[/] {escape(run.label)} seed {run.seed}: {escape(error.strip().splitlines()[-1])}"
                )
            prog.update(bar, advance=1, info=f"done {run.label} seed {run.seed}")
            report(
                prog, bar, f"{finished}/{len(plan)} runs, {run.label} seed {run.seed} took {seconds:.0f} s"
            )
    rs = [r for r in read_results(results) if r["dataset"] == split.name]
    if rs:
        board = build_board(rs, [])
        out.print(rich_table(compact_table(board, split.name)))  # the full board: in the .md
    console.print(
        escape("time per row (s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(timings.items())))
    )
    paths, drawn = regenerate(results, lb_out, ("md", "html"), bench_dir=bench_dir)
    assert drawn is not None
    for reason in drawn.skipped:
        console.print(f"[yellow]plot skipped[/] {reason}")
    console.print(f"plots: {len(drawn.files)} files under [bold]{Path(lb_out) / 'plots'}[/]")
    console.print(
        f"leaderboard: [bold]{paths[-1]}[/] (and {Path(lb_out) / 'index.html'}); all columns of the table above "
        f"(CI, paired vs ce, ECE, cost): {Path(lb_out) / page_name(split.name)}"
    )
    console.print(f"demo: {len(plan) - len(failures)}/{len(plan)} runs in {time.perf_counter() - t0:.0f} s")
    if failures:
        log = Path(results) / "demo-failures.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(f"== {r.label} seed {r.seed}\n{tb}" for r, tb in failures), encoding="utf-8")
        raise LTBenchError(
            f"{len(failures)} demo run(s) failed: {', '.join(sorted({r.label for r, _ in failures}))}",
            f"tracebacks in {log}",
        )
    return paths
