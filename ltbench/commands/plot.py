"""``ltbench plot``: the figures (PNG + SVG) from result files, benchmark JSONs and the reported figures."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plot")
@click.option(
    "--results",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Directory of result JSON files.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("leaderboards"),
    show_default=True,
    help="Figures go to OUT/plots/ (rebuilt as a whole; `ltbench leaderboard` links them).",
)
@click.option(
    "--bench",
    type=click.Path(path_type=Path),
    default=Path("benchmarks/results"),
    show_default=True,
    help="Where benchmarks/bench_multires.py wrote multires*.json (paper Fig. 2).",
)
@click.option(
    "--reported",
    type=click.Path(path_type=Path),
    default=None,
    help="Reported-figures CSV [default: the checkout's leaderboards/reported.csv].",
)
@click.option("--no-reported", is_flag=True, help="No reported-vs-reproduced scatter.")
@click.option(
    "--method",
    "methods",
    multiple=True,
    help="A row (e.g. ce, candle[cd]) to draw per-class accuracy lines for (repeatable, at most 5).",
)
def command(
    results: Path, out: Path, bench: Path, reported: Path | None, no_reported: bool, methods: tuple[str, ...]
) -> None:
    """Draw per-class heatmap (and lines for --method rows), group bars, λ, weight norms, multi-res cost."""
    from ltbench.progress import console
    from ltbench.regenerate import plot_only

    drawn = plot_only(results, out, bench, False if no_reported else (reported or True), methods)
    for path in drawn.files:
        click.echo(str(path))
    for reason in drawn.skipped:
        console.print(f"[yellow]skipped[/] {reason}")
