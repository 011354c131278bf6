"""Cell formats shared by every table of the board: percentages, mean ± std, signed differences, intervals."""

from __future__ import annotations

from ltbench.leaderboard.model import Stat
from ltbench.stats import Summary


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def fmt_stat(s: Stat | None) -> str:
    """``mean ± std`` (sample std over seeds), ``mean`` for one seed, N/A for an empty group, — if not run."""
    if s is None:
        return "—"
    if not s.values:
        return "N/A"
    return f"{s.mean:.2f}" if s.std is None else f"{s.mean:.2f} ± {s.std:.2f}"


def fmt_signed(d: float | None) -> str:
    if d is None:
        return "—"
    d = round(d, 2)
    return f"{'+' if d >= 0 else '-'}{abs(d):.2f}"


def fmt_interval(s: Summary | None) -> str:
    """``[lo, hi]`` of a t-interval; — without one (fewer than two seeds)."""
    if s is None or s.lo is None or s.hi is None:
        return "—"
    return f"[{s.lo:.2f}, {s.hi:.2f}]"
