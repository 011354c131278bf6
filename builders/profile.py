"""The exponential-decay long-tail profile and LDAM-DRW's per-class selection.

n_c = int(n_max · (1/IR) ** (c / (C − 1))), c = 0..C−1 over the LT class order (label order by default),
computed in float64 with ``**`` (the ``exp(−ln IR · c/(C−1))`` form loses one image at the tail on CIFAR-100;
see research/datasets.md §0).
Selection follows LDAM-DRW's ``IMBALANCECIFAR10.gen_imbalanced_data``: the numpy legacy RNG is seeded once,
then for each class in label order ``np.random.shuffle(np.where(labels == c)[0])`` and the first n_c are kept.
"""

from __future__ import annotations

import math

import numpy as np

from ltbench.errors import LTBenchError

FORMULA = "n_c = int(n_max * (1/IR) ** (c / (C - 1))), c = 0..C-1 over the LT class order (lt_order)"
STANDARD_IRS = (10, 100)


def lt_counts(n_max: float, num_classes: int, ir: float) -> list[int]:
    """Per-class counts of the exponential profile (class 0 keeps ``int(n_max)``)."""
    if num_classes == 1:
        return [int(n_max)]
    imb_factor = 1.0 / ir
    return [int(n_max * imb_factor ** (c / (num_classes - 1.0))) for c in range(num_classes)]


def lt_order(pool_counts: np.ndarray, order: str = "label") -> list[int]:
    """Class ids in LT order, the c-th of which receives the profile's c-th count: ``label`` (class-label order,
    the default) or ``count`` (pool count descending, ties by label — needed where a small class precedes a
    larger one, e.g. Stanford Cars at n_max = 49)."""
    if order == "label":
        return list(range(len(pool_counts)))
    if order != "count":
        raise ValueError(f"unknown class order {order!r}")
    pool_counts = np.asarray(pool_counts)
    return sorted(range(len(pool_counts)), key=lambda c: (-int(pool_counts[c]), c))


def order_counts(counts: list[int], pool_counts: np.ndarray, order: str = "label") -> list[int]:
    """The profile's counts indexed by class label, given in :func:`lt_order`."""
    out = [0] * len(counts)
    for rank, c in enumerate(lt_order(pool_counts, order)):
        out[c] = counts[rank]
    return out


def resolve_n_max(rule: str | float, pool_counts: np.ndarray) -> float:
    """n_max from a rule: ``max``, ``second_max`` (ignores a single outlier class), ``mean`` (LDAM's
    ``len(data) / C``), or a number."""
    counts = np.sort(np.asarray(pool_counts))[::-1]
    if isinstance(rule, (int, float)):
        return float(rule)
    if rule == "max":
        return float(counts[0])
    if rule == "second_max":
        return float(counts[1])
    if rule == "mean":
        return float(counts.sum()) / len(counts)
    raise ValueError(f"unknown n_max rule {rule!r}")


def check_ir(ir: float, allow_any: bool = False) -> float:
    """Validate an imbalance ratio given on the command line."""
    if not math.isfinite(ir):
        raise LTBenchError(f"imbalance ratio {ir} is not a finite number", "use --ir 10 or --ir 100")
    if ir in STANDARD_IRS:
        return ir
    if allow_any and ir >= 1:
        return ir
    if allow_any:
        raise LTBenchError(f"imbalance ratio {ir:g} is below 1", "use --ir with a number >= 1")
    raise LTBenchError(
        f"imbalance ratio {ir:g} is not a standard one",
        "use --ir 10 or --ir 100, or add --allow-any-ir for another value >= 1",
    )


def ldam_select(labels: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices into ``labels`` kept by LDAM-DRW's procedure, in its order (class by class, shuffled within)."""
    labels = np.asarray(labels)
    saved = np.random.get_state()  # LDAM seeds the global legacy RNG; restore it afterwards for the caller
    try:
        np.random.seed(seed)
        chosen = []
        for c, n in enumerate(counts):
            idx = np.where(labels == c)[0]
            if len(idx) < n:
                raise LTBenchError(
                    f"class {c} has {len(idx)} pool images but the profile asks for {n}",
                    "check the source files are complete, or lower n_max",
                )
            np.random.shuffle(idx)
            chosen.append(idx[:n])
    finally:
        np.random.set_state(saved)
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)


def ir_tag(ir: float) -> str:
    """``10`` → ``"10"``, ``12.5`` → ``"12.5"`` (used in split names ``<source>-lt<ir>``)."""
    return f"{ir:g}"
