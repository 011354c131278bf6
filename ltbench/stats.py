"""Statistics over seeds: mean, sample std and Student-t 95 % intervals, alone and paired.

An interval over n seeds is ``mean ± t(1 − α/2, n − 1) · s / √n`` with ``s`` the sample std (ddof 1); a paired
difference is the same interval over the per-seed differences of two rows on the seeds both ran. With fewer
than two values there is no std and no interval (``None``), never a zero-width one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and the t-interval of ``n`` values (std and interval ``None`` below two values)."""

    n: int
    mean: float | None
    std: float | None
    lo: float | None
    hi: float | None

    @property
    def contains_zero(self) -> bool | None:
        """Whether the interval holds 0 (``None`` without an interval)."""
        return None if self.lo is None or self.hi is None else self.lo <= 0.0 <= self.hi


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """Mean ± sample std and the two-sided ``level`` t-interval of ``values``."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired(a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL) -> tuple[Summary, list[int]]:
    """The interval of ``a[s] − b[s]`` over the seeds ``s`` both hold, and those seeds (sorted)."""
    seeds = sorted(set(a) & set(b))
    return summarize([a[s] - b[s] for s in seeds], level), seeds
