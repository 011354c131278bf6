"""Figures from result files (matplotlib, Agg), each written as PNG and SVG under ``<out>/plots/``.

Per dataset with results: ``per-class-<dataset>`` (per-class accuracy of every method row vs class index, train
counts as bars), ``groups-<dataset>`` (avg/head/medium/tail grouped bars, std over seeds as error bars),
``weight-norms-<dataset>`` (classifier weight norm per class of teacher and student, paper Fig. 7, from
``records["weight_norms"]``). Across datasets: ``lambda-schedule`` (mean λ per epoch, paper Fig. 6, from
``records["lambda_per_epoch"]``), ``multires-cost`` (epoch time and peak memory of single / CANDLE / naive
multi-resolution, paper Fig. 2, from ``benchmarks/results/multires*.json``), ``reported-vs-reproduced``.

A figure whose inputs are absent is skipped, and the reason is returned; nothing is ever drawn from made-up
data. The whole ``plots/`` folder is rebuilt in a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PLOTS_DIR = "plots"
GLOBAL_PLOTS = ("lambda-schedule", "multires-cost", "reported-vs-reproduced")
MULTIRES_CASES = ("single", "candle", "naive")
MULTIRES_LABELS = {"single": "single-res.", "candle": "CANDLE multi-res.", "naive": "naive multi-res."}


def dataset_plot_names(dataset: str) -> tuple[str, ...]:
    return (f"per-class-{dataset}", f"groups-{dataset}", f"weight-norms-{dataset}")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "ltbench", "figure.dpi": 100, "font.size": 9})
    return plt


def save(fig, folder: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.svg (no timestamps, fixed SVG ids) and close the figure."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    fig.savefig(paths[0], metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(paths[1], metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    return paths


def _label(row: str, backbone: str) -> str:
    return f"{row} ({backbone})"


def _order(counts: Sequence[int]) -> list[int]:
    """Classes by train count, descending (head → tail), ties by label."""
    return sorted(range(len(counts)), key=lambda c: (-counts[c], c))


def _mean_lists(lists: list[list[float | None]]) -> np.ndarray:
    """Element-wise mean over seeds, ignoring None; NaN where no seed has a value."""
    arr = np.array([[np.nan if v is None else float(v) for v in xs] for xs in lists], dtype=float)
    out = np.full(arr.shape[1], np.nan)
    for j in range(arr.shape[1]):
        col = arr[:, j][np.isfinite(arr[:, j])]
        if col.size:
            out[j] = col.mean()
    return out


def per_class_figure(dataset: str, entries: Sequence[Any]):
    """Bars: train images per class; lines: per-class accuracy (%) of each entry, classes head → tail."""
    plt = _plt()
    counts = entries[0].results[0]["train_counts"]
    order = _order(counts)
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x, [counts[c] for c in order], color="0.85", width=1.0, label="train images")
    ax.set_xlabel("class index (sorted by train count, head → tail)")
    ax.set_ylabel("train images")
    ax2 = ax.twinx()
    for e in entries:
        acc = _mean_lists([r["per_class_accuracy"] for r in e.results])
        ax2.plot(
            x, 100 * acc[order], marker="." if len(order) <= 50 else None, label=_label(e.row, e.backbone)
        )
    ax2.set_ylabel("per-class accuracy (%)")
    ax2.set_ylim(0, 100)
    ax.set_title(f"{dataset}: per-class accuracy")
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    return fig


def groups_figure(dataset: str, entries: Sequence[Any]):
    """Grouped bars of avg/head/medium/tail per entry; error bars = sample std over seeds; N/A groups blank."""
    plt = _plt()
    metrics = ("avg", "head", "medium", "tail")
    fig, ax = plt.subplots(figsize=(min(12, max(6, 0.6 * len(entries) + 5)), 4))
    width = 0.8 / len(entries)
    for i, e in enumerate(entries):
        stats = [e.stat(m) for m in metrics]
        means = [np.nan if s.mean is None else s.mean for s in stats]
        stds = [0.0 if s.std is None else s.std for s in stats]
        ax.bar(np.arange(4) + i * width - 0.4 + width / 2, means, width, yerr=stds, capsize=2,
               label=_label(e.row, e.backbone))  # fmt: skip
    ax.set_xticks(np.arange(4), metrics)
    ax.set_xlabel("class group")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{dataset}: head / medium / tail accuracy")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def weight_norm_figure(dataset: str, entries: Sequence[Any]):
    """Per-class classifier weight norms (teacher and student) of the entries that recorded them (Fig. 7)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for e in entries:
        order = _order(e.results[0]["train_counts"])
        recs = [r["records"]["weight_norms"] for r in e.results if "weight_norms" in r.get("records", {})]
        for who in ("teacher", "student"):
            lists = [w[who] for w in recs if w.get(who) is not None]
            if lists:
                norms = _mean_lists(lists)
                ax.plot(np.arange(len(order)), norms[order], label=f"{_label(e.row, e.backbone)} {who}")
    ax.set_xlabel("class index (sorted by train count, head → tail)")
    ax.set_ylabel("classifier weight norm")
    ax.set_title(f"{dataset}: classifier weight norms")
    ax.legend(fontsize=7)
    return fig


def lambda_figure(series: Sequence[tuple[str, np.ndarray]]):
    """Mean λ per epoch for each (dataset · row) (paper Fig. 6)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, lam in series:
        ax.plot(np.arange(1, len(lam) + 1), lam, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean λ (adversarial balancing)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Learned λ during distillation")
    ax.legend(fontsize=7)
    return fig


def multires_figure(benches: Sequence[tuple[str, dict[str, dict[str, float]]]]):
    """Epoch time and peak memory per case (paper Fig. 2); one bar group per benchmark file/device."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    width = 0.8 / len(benches)
    for ax, key, ylabel in (
        (axes[0], "epoch_s", "1 epoch time (s)"),
        (axes[1], "peak_mem_mb", "peak memory (MB)"),
    ):
        for i, (device, cases) in enumerate(benches):
            vals = [cases.get(c, {}).get(key, np.nan) for c in MULTIRES_CASES]
            vals = [np.nan if v is None else float(v) for v in vals]
            xs = np.arange(3) + i * width - 0.4 + width / 2
            ax.bar(xs, vals, width, label=device)
            for x, v in zip(xs, vals, strict=True):  # ratio to single-resolution above each bar
                if np.isfinite(v) and np.isfinite(vals[0]) and vals[0] > 0:
                    ax.annotate(f"×{v / vals[0]:.2f}", (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(3), [MULTIRES_LABELS[c] for c in MULTIRES_CASES])
        ax.set_ylabel(ylabel)
    axes[0].set_title("Training cost of multi-resolution inputs")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def scatter_figure(points: Sequence[tuple[str, float, float, float]]):
    """Reproduced vs reported, one marker per metric; error bars = std over seeds; y = x for reference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for metric, marker in zip(("avg", "head", "medium", "tail"), "osD^", strict=True):
        pts = [(r, o, s) for m, r, o, s in points if m == metric]
        if pts:
            rep, ours, std = (np.array(v) for v in zip(*pts, strict=True))
            ax.errorbar(rep, ours, yerr=std, fmt=marker, capsize=2, label=metric)
    ax.plot([0, 100], [0, 100], color="0.5", lw=0.8, ls="--")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("reported accuracy (%)")
    ax.set_ylabel("reproduced accuracy (%)")
    ax.set_title("Reported vs reproduced")
    ax.legend(fontsize=7)
    return fig


def read_multires(bench_dir: Path | None) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """(label, case id → {epoch_s, peak_mem_mb}) of each ``multires*.json`` under ``bench_dir``, by name."""
    from ltbench.errors import LTBenchError

    if bench_dir is None or not Path(bench_dir).is_dir():
        return []
    out = []
    for path in sorted(Path(bench_dir).glob("multires*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cases = {c["id"]: c for c in data["cases"]}
        except (ValueError, KeyError, TypeError) as e:
            raise LTBenchError(
                f"{path} is not a multires benchmark result ({e})", "rerun the benchmark"
            ) from e
        out.append((f"{data.get('device', '?')} ({path.stem})", cases))
    return out


def make_plots(
    results: Path,
    out: Path,
    bench_dir: Path | None = Path("benchmarks/results"),
    reported: Path | bool | None = True,
) -> tuple[list[Path], list[str]]:
    """Draw every figure whose inputs exist into ``out/plots``; return (files written, skip reasons)."""
    from ltbench.errors import LTBenchError
    from ltbench.leaderboard import build_board, default_reported, read_reported
    from ltbench.results import read_results

    if not Path(results).is_dir():
        raise LTBenchError(f"no result files under {results} (no such directory)", "pass --results DIR")
    rep_path = default_reported() if reported is True else (Path(reported) if reported else None)
    board = build_board(read_results(Path(results)), read_reported(rep_path))
    final = Path(out) / PLOTS_DIR
    tmp = Path(out) / f".{PLOTS_DIR}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    written: list[str] = []
    skipped: list[str] = []

    def emit(name: str, fig) -> None:
        written.extend(p.name for p in save(fig, tmp, name))

    lam_series = []
    scatter = []
    any_norms = False
    for d in sorted(board.entries):
        ran = [e for e in board.entries[d] if e.results]
        if not ran:
            continue
        per_class = [e for e in ran if all(r.get("per_class_accuracy") for r in e.results)]
        if per_class:
            emit(f"per-class-{d}", per_class_figure(d, per_class))
        else:
            skipped.append(f"per-class-{d}: no result holds per_class_accuracy")
        emit(f"groups-{d}", groups_figure(d, ran))
        norms = [e for e in ran if any("weight_norms" in r.get("records", {}) for r in e.results)]
        if norms:
            emit(f"weight-norms-{d}", weight_norm_figure(d, norms))
            any_norms = True
        for e in ran:
            lams = [
                r["records"]["lambda_per_epoch"]
                for r in e.results
                if r.get("records", {}).get("lambda_per_epoch")
            ]
            if lams:
                n = min(len(x) for x in lams)
                lam_series.append((f"{d} · {_label(e.row, e.backbone)}", _mean_lists([x[:n] for x in lams])))
            for m, rep in e.reported.items():
                s = e.stat(m)
                if s is not None and s.mean is not None:
                    scatter.append((m, rep.value, s.mean, s.std or 0.0))
    if not any_norms:
        skipped.append("weight-norms-*: no result holds records['weight_norms'] (CANDLE results record them)")
    if lam_series:
        emit("lambda-schedule", lambda_figure(lam_series))
    else:
        skipped.append(
            "lambda-schedule: no result holds records['lambda_per_epoch'] (CANDLE with ALB records it)"
        )
    benches = read_multires(bench_dir)
    if benches:
        emit("multires-cost", multires_figure(benches))
    else:
        skipped.append(
            f"multires-cost: no multires*.json under {bench_dir} (run benchmarks/bench_multires.py)"
        )
    if scatter:
        emit("reported-vs-reproduced", scatter_figure(scatter))
    else:
        skipped.append("reported-vs-reproduced: no reproduced entry has a reported figure")
    if final.exists():
        shutil.rmtree(final)
    if tmp.exists():
        os.replace(tmp, final)
    return [final / n for n in written], skipped
