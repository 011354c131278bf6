"""``ltbench leaderboard`` / ``plot`` / ``demo``: results → board → figures → pages, each step once.

The board is built once from the result files and the reported CSV; ``ltbench.plots`` draws its figures and
returns their list; the leaderboard renderers link exactly that list. Same inputs ⇒ same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ltbench.leaderboard.model import load_board
from ltbench.leaderboard.write import write_board
from ltbench.plots import Plots, make_plots

BENCH_DIR = Path("benchmarks/results")


def regenerate(
    results: Path,
    out: Path,
    formats: Sequence[str] = ("md",),
    reported: Path | str | bool | None = True,
    readme: Path | None = None,
    plots: bool = True,
    bench_dir: Path | None = BENCH_DIR,
    methods: Sequence[str] = (),
    screenshot: bool = False,
) -> tuple[list[Path], Plots | None]:
    """Draw the figures (unless ``plots`` is False) and write every leaderboard file under ``out``; return the
    leaderboard paths (README last for md) and what was drawn."""
    board = load_board(results, reported)
    drawn = make_plots(board, out, bench_dir, methods) if plots else None
    paths = write_board(board, out, formats, drawn.figures if drawn else None, readme, screenshot)
    return paths, drawn


def plot_only(
    results: Path,
    out: Path,
    bench_dir: Path | None = BENCH_DIR,
    reported: Path | str | bool | None = True,
    methods: Sequence[str] = (),
) -> Plots:
    """The figures alone (``ltbench plot``)."""
    return make_plots(load_board(results, reported), out, bench_dir, methods)
