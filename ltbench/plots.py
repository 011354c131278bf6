"""Figures of a leaderboard board (matplotlib, Agg), each written as PNG and SVG under ``<out>/plots/``.

Per dataset with results: ``per-class-<dataset>`` (a methods × classes heatmap of per-class accuracy, classes
in LT order, train counts as a bar strip above, head/medium/tail means beside), ``per-class-lines-<dataset>``
(per-class accuracy lines of at most :data:`MAX_LINES` rows chosen with ``ltbench plot --method``),
``groups-<dataset>`` (avg/head/medium/tail bars per row, std over seeds as error bars), ``weight-norms-<dataset>``
(classifier weight norm per class of teacher and student, paper Fig. 7, from ``records["weight_norms"]``).
Across datasets: ``lambda-schedule`` (mean λ per epoch, paper Fig. 6, from ``records["lambda_per_epoch"]``),
``multires-cost`` (epoch time and peak memory of single / CANDLE / naive multi-resolution, paper Fig. 2, from
``benchmarks/results/multires*.json``), ``reported-vs-reproduced``.

:func:`make_plots` takes the board the leaderboard renders and returns the figures it drew, by dataset, which
is exactly what the pages link to. A figure whose inputs are absent is skipped with its reason; nothing is
drawn from made-up data. ``plots/`` is rebuilt in a temporary folder and renamed into place, and left as it
is when nothing is drawn.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ltbench.errors import LTBenchError
from ltbench.groups import GROUPS

if TYPE_CHECKING:  # the board model, for type hints only: the caller hands the board in
    from ltbench.leaderboard.model import Board, Entry

PLOTS_DIR = "plots"
MULTIRES_CASES = ("single", "candle", "naive")
MULTIRES_LABELS = {"single": "single-res.", "candle": "CANDLE multi-res.", "naive": "naive multi-res."}
GROUP_METRICS = ("avg", *GROUPS)
GROUP_COLORS = {"avg": "0.35", "head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
MAX_LINES = 5  # per-class line plots stay readable up to this many rows
ANNOTATE_CLASSES = 25  # heatmap cells carry their value up to this many classes


@dataclass
class Plots:
    """What :func:`make_plots` drew: dataset (``""`` for cross-dataset figures) → PNG paths relative to
    ``out``; every file written; why each absent figure was skipped."""

    figures: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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


def label(e: Entry, tags: Sequence[str] = ()) -> str:
    text = f"{e.row} ({e.backbone})"
    return f"{text} [{e.setting.tags(tags)}]" if tags and e.setting else text


def lt_order(counts: Sequence[int]) -> list[int]:
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


def _per_class(e: Entry, order: Sequence[int]) -> np.ndarray:
    """Mean per-class accuracy (%) over seeds, in ``order``."""
    return 100 * _mean_lists([list(r.per_class_accuracy or []) for r in e.runs])[list(order)]


def _group_spans(e: Entry, order: Sequence[int]) -> list[tuple[str, int, int]]:
    """(group, first, last) positions of each non-empty group along ``order`` (groups are LT-contiguous)."""
    pos = {c: i for i, c in enumerate(order)}
    spans = []
    for g in GROUPS:
        idx = sorted(pos[c] for c in e.runs[0].group_classes.get(g, []))
        if idx:
            spans.append((g, idx[0], idx[-1]))
    return spans


def _count_strip(ax, counts: Sequence[int], order: Sequence[int], spans) -> None:
    x = np.arange(len(order))
    ax.bar(x, [counts[c] for c in order], width=0.9, color="0.6")
    ax.set_ylabel("train\nimages")
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.tick_params(axis="x", labelbottom=False, bottom=False)
    ax.spines[["top", "right"]].set_visible(False)
    top = max(counts)
    for g, a, b in spans:
        ax.annotate(g, ((a + b) / 2, 1.02), xycoords=("data", "axes fraction"), ha="center", va="bottom")
        if a > 0:
            ax.axvline(a - 0.5, color="k", lw=0.8)
    ax.set_ylim(0, top * 1.05)


def per_class_figure(dataset: str, entries: Sequence[Entry], tags: Sequence[str] = ()):
    """Heatmap of per-class accuracy (%): rows = entries (best avg first), columns = classes head → tail;
    train counts above; each row's head/medium/tail/avg means (over seeds) in a panel beside."""
    plt = _plt()
    counts = entries[0].runs[0].train_counts
    order = lt_order(counts)
    spans = _group_spans(entries[0], order)
    grid = np.vstack([_per_class(e, order) for e in entries])
    n_rows, n_cls = grid.shape
    map_w = min(13.0, max(3.0, 0.45 * n_cls))  # inches: heatmap, group panel, colour bar
    grp_w, bar_w = 2.2, 0.2
    row_h = max(0.32, 0.6 / n_rows)  # inches per row; one row still reads as a band, not a line
    height = 1.0 + row_h * n_rows + 0.9
    fig = plt.figure(figsize=(map_w + grp_w + bar_w + 0.4, height))
    gs = fig.add_gridspec(
        2, 3, height_ratios=[1.0, row_h * n_rows], width_ratios=[map_w, grp_w, bar_w],
        hspace=0.05, wspace=0.04,
    )  # fmt: skip
    ax_bar, ax_map = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0])
    ax_grp, ax_cb = fig.add_subplot(gs[1, 1]), fig.add_subplot(gs[1, 2])
    _count_strip(ax_bar, counts, order, spans)
    im = ax_map.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
    ax_map.set_yticks(np.arange(n_rows), [label(e, tags) for e in entries])
    step = max(1, n_cls // 40)
    ax_map.set_xticks(np.arange(0, n_cls, step), [str(order[i]) for i in range(0, n_cls, step)])
    ax_map.set_xlabel("class (label id), sorted by train count: head → tail")
    for _, a, _b in spans:
        if a > 0:
            ax_map.axvline(a - 0.5, color="w", lw=1.5)
    groups = np.array([[_mean_or_nan(e, m) for m in (*GROUPS, "avg")] for e in entries])
    ax_grp.imshow(groups, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
    ax_grp.set_xticks(np.arange(4), ["head", "med.", "tail", "avg"])
    ax_grp.xaxis.set_ticks_position("top")
    ax_grp.set_yticks([])
    ax_grp.axvline(2.5, color="w", lw=1.5)
    _annotate(ax_grp, groups)
    if n_cls <= ANNOTATE_CLASSES:
        _annotate(ax_map, grid)
    fig.colorbar(im, cax=ax_cb, label="accuracy (%)")
    ax_bar.set_title(f"{dataset}: per-class accuracy (%, mean over seeds)", pad=22)
    return fig


def _mean_or_nan(e: Entry, metric: str) -> float:
    s = e.stat(metric)
    return np.nan if s is None or s.mean is None else s.mean


def _annotate(ax, grid: np.ndarray) -> None:
    for (i, j), v in np.ndenumerate(grid):
        text = "N/A" if np.isnan(v) else f"{v:.0f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")


def per_class_lines_figure(dataset: str, entries: Sequence[Entry], tags: Sequence[str] = ()):
    """Per-class accuracy lines of a few entries (classes head → tail), train counts in a strip above."""
    plt = _plt()
    counts = entries[0].runs[0].train_counts
    order = lt_order(counts)
    fig, (ax_bar, ax) = plt.subplots(
        2, 1, figsize=(8, 4.6), sharex=True, gridspec_kw={"height_ratios": [1, 3], "hspace": 0.08}
    )
    spans = _group_spans(entries[0], order)
    _count_strip(ax_bar, counts, order, spans)
    x = np.arange(len(order))
    for _, a, _b in spans:
        if a > 0:
            ax.axvline(a - 0.5, color="0.6", lw=0.8)
    step = max(1, len(order) // 40)
    ax.set_xticks(x[::step], [str(order[i]) for i in x[::step]])
    for e in entries:
        ax.plot(x, _per_class(e, order), marker="." if len(order) <= 50 else None, label=label(e, tags))
    ax.set_ylim(0, 102)
    ax.set_ylabel("per-class accuracy (%)")
    ax.set_xlabel("class (label id), sorted by train count: head → tail")
    ax.grid(axis="y", color="0.9")
    ax.legend(fontsize=8, loc="lower left")
    ax_bar.set_title(f"{dataset}: per-class accuracy (mean over seeds)", pad=20)
    return fig


def groups_figure(dataset: str, entries: Sequence[Entry], tags: Sequence[str] = ()):
    """Per entry, bars of avg/head/medium/tail (mean over seeds; error bars = sample std); N/A groups blank."""
    plt = _plt()
    n = len(entries)
    fig, ax = plt.subplots(figsize=(min(16, max(6, 0.55 * n + 3)), 4.2))
    width = 0.2
    for k, m in enumerate(GROUP_METRICS):
        stats = [e.stat(m) for e in entries]
        means = [np.nan if s is None or s.mean is None else s.mean for s in stats]
        stds = [0.0 if s is None or s.std is None else s.std for s in stats]
        ax.bar(np.arange(n) + (k - 1.5) * width, means, width, yerr=stds, capsize=1.5, label=m,
               color=GROUP_COLORS[m], error_kw={"lw": 0.8})  # fmt: skip
    ax.set_xticks(np.arange(n), [label(e, tags) for e in entries], rotation=35, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_xlim(-0.6, n - 0.4)
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)
    ax.set_title(f"{dataset}: avg / head / medium / tail accuracy (mean ± std over seeds)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    return fig


def weight_norm_figure(dataset: str, entries: Sequence[Entry], tags: Sequence[str] = ()):
    """Per-class classifier weight norms (teacher and student) of the entries that recorded them (Fig. 7)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for ax, who in zip(axes, ("teacher", "student"), strict=True):
        for e in entries:
            order = lt_order(e.runs[0].train_counts)
            lists = [r.records["weight_norms"][who] for r in e.runs if "weight_norms" in r.records]
            lists = [w for w in lists if w is not None]
            if lists:
                ax.plot(np.arange(len(order)), _mean_lists(lists)[order], marker=".", label=label(e, tags))
        ax.set_title(f"{who}")
        step = max(1, len(order) // 40)
        ax.set_xticks(np.arange(0, len(order), step), [str(order[i]) for i in range(0, len(order), step)])
        ax.set_xlabel("class (label id), sorted by train count: head → tail")
        ax.grid(color="0.92")
    axes[0].set_ylabel("classifier weight norm")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{dataset}: classifier weight norms (mean over seeds)")
    fig.tight_layout()
    return fig


def lambda_figure(series: Sequence[tuple[str, np.ndarray]]):
    """Mean λ per epoch for each (dataset · row) (paper Fig. 6)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, lam in series:
        ax.plot(np.arange(1, len(lam) + 1), lam, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean λ (adversarial balancing)")
    ax.set_ylim(0, 1.05)
    ax.grid(color="0.92")
    ax.set_title("Learned λ during distillation")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def multires_figure(benches: Sequence[tuple[str, dict[str, dict[str, float]]]]):
    """Epoch time and peak memory per case (paper Fig. 2); one bar group per benchmark file/device."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(benches)
    for ax, key, ylabel in (
        (axes[0], "epoch_s", "1 epoch time (s)"),
        (axes[1], "peak_mem_mb", "peak memory (MB)"),
    ):
        top = 0.0
        for i, (device, cases) in enumerate(benches):
            vals = [cases.get(c, {}).get(key, np.nan) for c in MULTIRES_CASES]
            vals = [np.nan if v is None else float(v) for v in vals]
            xs = np.arange(3) + i * width - 0.4 + width / 2
            ax.bar(xs, vals, width, label=device)
            top = max([top] + [v for v in vals if np.isfinite(v)])
            for x, v in zip(xs, vals, strict=True):  # ratio to single-resolution above each bar
                if np.isfinite(v) and np.isfinite(vals[0]) and vals[0] > 0:
                    ax.annotate(f"×{v / vals[0]:.2f}", (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        ax.set_xticks(np.arange(3), [MULTIRES_LABELS[c] for c in MULTIRES_CASES])
        ax.set_ylabel(ylabel)
    fig.suptitle("Training cost of multi-resolution inputs")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def scatter_figure(points: Sequence[tuple[str, float, float, float]]):
    """Reproduced vs reported, one marker per metric; error bars = std over seeds; y = x for reference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for metric, marker in zip(GROUP_METRICS, "osD^", strict=True):
        pts = [(r, o, s) for m, r, o, s in points if m == metric]
        if pts:
            rep, ours, std = (np.array(v) for v in zip(*pts, strict=True))
            ax.errorbar(rep, ours, yerr=std, fmt=marker, capsize=2, label=metric, color=GROUP_COLORS[metric])
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
    board: Board,
    out: Path,
    bench_dir: Path | None = Path("benchmarks/results"),
    methods: Sequence[str] = (),
) -> Plots:
    """Draw every figure of ``board`` whose inputs exist into ``out/plots``. ``methods``: the rows to draw
    per-class line plots for (at most :data:`MAX_LINES`; none by default)."""
    if len(methods) > MAX_LINES:
        raise LTBenchError(
            f"{len(methods)} methods for the per-class line plot", f"choose at most {MAX_LINES} with --method"
        )
    final = Path(out) / PLOTS_DIR
    tmp = Path(out) / f".{PLOTS_DIR}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    res = Plots()

    def emit(key: str, name: str, fig) -> None:
        res.files += [final / p.name for p in save(fig, tmp, name)]
        res.figures.setdefault(key, []).append(f"{PLOTS_DIR}/{name}.png")

    lam_series: list[tuple[str, np.ndarray]] = []
    scatter: list[tuple[str, float, float, float]] = []
    any_norms = False
    for d in sorted(board.entries):
        ran = [e for e in board.entries[d] if e.runs]
        if not ran:
            continue
        tags = board.setting_fields(d)
        per_class = [e for e in ran if all(r.per_class_accuracy and r.train_counts for r in e.runs)]
        counts = per_class[0].runs[0].train_counts if per_class else None
        odd = [e for e in per_class if e.runs[0].train_counts != counts]
        if odd:
            res.skipped.append(
                f"per-class-{d}: {', '.join(label(e, tags) for e in odd)} have other train counts"
            )
        per_class = [e for e in per_class if e not in odd]
        if per_class:
            emit(d, f"per-class-{d}", per_class_figure(d, per_class, tags))
            chosen = [e for e in per_class if e.row in methods]
            if chosen:
                emit(d, f"per-class-lines-{d}", per_class_lines_figure(d, chosen, tags))
            elif methods:
                res.skipped.append(f"per-class-lines-{d}: none of {', '.join(methods)} ran on {d}")
        else:
            res.skipped.append(f"per-class-{d}: no result holds per_class_accuracy")
        emit(d, f"groups-{d}", groups_figure(d, ran, tags))
        norms = [e for e in ran if any("weight_norms" in r.records for r in e.runs)]
        if norms:
            emit(d, f"weight-norms-{d}", weight_norm_figure(d, norms, tags))
            any_norms = True
        for e in ran:
            lams = [r.records["lambda_per_epoch"] for r in e.runs if r.records.get("lambda_per_epoch")]
            if lams:
                n = min(len(x) for x in lams)
                lam_series.append((f"{d} · {label(e, tags)}", _mean_lists([x[:n] for x in lams])))
            for m, rep in e.reported.items():
                s = e.stat(m)
                if s is not None and s.mean is not None and e.comparable(m):
                    scatter.append((m, rep.value, s.mean, s.std or 0.0))
    if not any_norms:
        res.skipped.append(
            "weight-norms-*: no result holds records['weight_norms'] (CANDLE results record them)"
        )
    if lam_series:
        emit("", "lambda-schedule", lambda_figure(lam_series))
    else:
        res.skipped.append(
            "lambda-schedule: no result holds records['lambda_per_epoch'] (CANDLE with ALB records it)"
        )
    benches = read_multires(bench_dir)
    if benches:
        emit("", "multires-cost", multires_figure(benches))
    else:
        res.skipped.append(
            f"multires-cost: no multires*.json under {bench_dir} (run benchmarks/bench_multires.py)"
        )
    if scatter:
        emit("", "reported-vs-reproduced", scatter_figure(scatter))
    else:
        res.skipped.append("reported-vs-reproduced: no reproduced entry has a reported figure")
    if res.files:  # nothing drawn: leave plots/ as it is
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    return res
