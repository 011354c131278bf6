"""Write every leaderboard file of a board under ``--out``; the only module here that touches the disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ltbench.errors import LTBenchError
from ltbench.leaderboard import html, machine, markdown
from ltbench.leaderboard.markdown import MARKER, Figures
from ltbench.leaderboard.model import Board, load_board
from ltbench.results import atomic_write_text

FORMATS = ("md", "csv", "json", "latex", "html")
SCREENSHOT = "screenshot.png"


def write_board(
    board: Board,
    out: Path,
    formats: Sequence[str] = ("md",),
    figures: Figures | None = None,
    readme: Path | None = None,
    screenshot: bool = False,
) -> list[Path]:
    """Regenerate every leaderboard file of ``board`` under ``out``; return the paths written (README last
    for md). ``figures``: what ``ltbench.plots.make_plots`` drew (the pages link exactly these). Pages this
    command generated earlier whose dataset has no results any more are removed; hand-written files stay."""
    out = Path(out)
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise LTBenchError(f"unknown format(s) {', '.join(bad)}", f"choose from {', '.join(FORMATS)}")
    if screenshot and "html" not in formats:
        raise LTBenchError("--screenshot renders index.html", "add --format html")
    figures = figures or {}
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out / name, text)
        written.append(out / name)

    def pages(suffix: str, texts: dict[str, str], keep: str) -> None:
        for name, text in texts.items():
            put(name, text)
        for old in sorted(out.glob(f"*{suffix}")):
            if old.name not in texts and old.name != keep and _generated(old):
                old.unlink()

    if "md" in formats:
        texts = {
            markdown.page_name(d): markdown.dataset_page(board, d, figures) for d in sorted(board.entries)
        }
        texts["paper-tables.md"] = markdown.paper_page(board)
        pages(".md", texts, keep="README.md")
    if "csv" in formats:
        put("leaderboard.csv", machine.csv_text(board))
    if "json" in formats:
        put("leaderboard.json", machine.json_text(board))
    if "latex" in formats:
        put("leaderboard.tex", machine.latex_text(board))
    if "html" in formats:
        texts = {f"{d}.html": html.dataset_html(board, d, figures) for d in sorted(board.entries)}
        pages(".html", texts, keep="index.html")
        put("index.html", html.index_html(board, figures))
        if screenshot:
            from ltbench.leaderboard.browser import screenshot as shoot

            written.append(shoot(out / "index.html", out / SCREENSHOT))
    if "md" in formats:
        put("README.md", markdown.index_page(board, figures))
    if readme is not None:
        markdown.update_readme(readme, markdown.readme_section(board, out, readme))
        written.append(Path(readme))
    return written


def write_leaderboards(
    results: Path,
    out: Path,
    formats: Sequence[str] = ("md",),
    reported: Path | str | bool | None = True,
    readme: Path | None = None,
    figures: Figures | None = None,
) -> list[Path]:
    """:func:`write_board` of the board of ``results`` and ``reported`` (a CSV path, True for the checkout's
    ``leaderboards/reported.csv``, None/False for none)."""
    return write_board(load_board(results, reported), out, formats, figures, readme)


def _generated(path: Path) -> bool:
    with path.open(encoding="utf-8") as f:
        return any(f.readline().strip() == MARKER for _ in range(2))
