"""The ``authors`` split protocol: the LT train split as the CANDLE authors' public loaders draw it.

Reference: gistvision/SADE-AgnosticLT at commit f0c042c (``REFERENCE``), folder ``custum_data/``: one loader per
source and ``new_dataset.py``'s ``class_dict`` (head / medium / tail index ranges). Every loader seeds numpy's
legacy RNG (``np.random.seed(0)``; Caltech-101 42; Fruits never), computes the exponential profile over its
class order, and draws per class in that order: ``np.random.shuffle`` of the class's positions and the first
n_c (CUB: ``np.random.choice(len(pool_c), n_c)``, i.e. with replacement, so the split holds duplicates).
Dogs, Cars and Fruits first run ``sort_dataset``: samples reordered by ``np.argsort(targets)``, classes
re-ranked by ``np.argsort(pool counts)[::-1]``, samples reordered again by the new labels; Caltech-101 reorders
its samples by ``np.argsort(targets)``. ``np.argsort`` is numpy's unstable quicksort, so tie orders depend on
numpy's algorithm: :func:`argsort_introsort` reproduces the introsort of numpy 1.17-1.24 (the authors' code
uses ``np.int``, removed in numpy 1.24), whose ``argsort`` had no SIMD path; numpy >= 1.25 sorts 32/64-bit
keys with AVX-512 (x86-simd-sort) and orders ties differently, so the installed numpy is never used for it.

The legacy ``RandomState`` streams (``seed``, ``shuffle``, ``choice``) are frozen by numpy's policy (NEP 19), so
the draws are those of 2022. Class ids and names stay ltbench's (the source's label order); the authors' class
order is recorded as the LT order (``profile.lt_order``) and gives the ``authors`` head / medium / tail groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ltbench.builders.profile import lt_counts, resolve_n_max

from ltbench.errors import LTBenchError

REFERENCE = "gistvision/SADE-AgnosticLT@f0c042c200aeb108012b6db9432cfd9e2fffa679 custum_data/"
SMALL_QUICKSORT = 15  # numpy's npysort: partitions of at most 16 items are insertion-sorted


@dataclass(frozen=True)
class AuthorsRecipe:
    """How the authors' loader for one source draws its LT train split (see the module docstring)."""

    loader: str  # file and class under custum_data/
    groups: tuple[int, int]  # class_dict: head = LT ranks [0, a), medium = [a, b), tail = [b, C)
    seed: int = 0  # the loader's np.random.seed
    n_max: str | float = "mean"  # profile.resolve_n_max rule: "mean" = len(pool) / C
    with_replacement: bool = False  # CUB: np.random.choice(len(pool_c), n_c)
    first_class_from: int | None = None  # CUB draws its first class from a hard-coded 30 (choice(30, n_0))
    presort: bool = False  # Caltech-101: samples reordered by np.argsort(targets)
    rerank: bool = False  # Dogs / Cars / Fruits: sort_dataset (classes re-ranked by pool count)
    name_order: bool = False  # Aircraft: class ids = np.unique of the class names (sorted), not variants.txt
    test: str = "test"  # the fixed split the authors evaluate on (it becomes ``test``)
    inexact: str = ""  # why the result cannot be the authors' own image list ("" = reproduced exactly)
    assumes: str = ""  # what exactness rests on, where the loader reads a file the source does not ship


@dataclass
class AuthorsSplit:
    indices: np.ndarray  # pool indices, in the authors' order (CUB: with duplicates)
    lt_order: list[int]  # ltbench class ids in the authors' class order (their label r = lt_order[r])
    n_max: float
    counts: list[int]  # profile counts by LT rank
    notes: dict[str, str]


def _sift_down(v: Sequence, a: list[int], o: int, i: int, n: int, tmp: int) -> None:
    """numpy's heap sift: move ``tmp`` down from 1-based slot ``i`` of the heap ``a[o + 1 : o + n + 1]``."""
    j = i << 1
    while j <= n:
        if j < n and v[a[o + j]] < v[a[o + j + 1]]:
            j += 1
        if v[tmp] < v[a[o + j]]:
            a[o + i] = a[o + j]
            i, j = j, j + j
        else:
            break
    a[o + i] = tmp


def _aheapsort(v: Sequence, a: list[int], start: int, n: int) -> None:
    """numpy's ``aheapsort_`` on ``a[start:start + n]`` (1-based heap indexing, as in npysort_heapsort.h)."""
    o = start - 1
    for l0 in range(n >> 1, 0, -1):
        _sift_down(v, a, o, l0, n, a[o + l0])
    while n > 1:
        tmp = a[o + n]
        a[o + n] = a[o + 1]
        n -= 1
        _sift_down(v, a, o, 1, n, tmp)


def argsort_introsort(values: Sequence | np.ndarray) -> np.ndarray:
    """``np.argsort(values)`` as numpy 1.17-1.24 computed it (``aquicksort_``: median-of-3 quicksort, insertion
    sort below 17 items, heapsort past a depth of 2·floor(log2 n)); ties come out in that algorithm's order."""
    v = [x.item() if hasattr(x, "item") else x for x in values]
    n = len(v)
    a = list(range(n))
    if n < 2:
        return np.asarray(a, dtype=np.int64)
    stack: list[tuple[int, int, int]] = []
    pl, pr = 0, n - 1
    depth = (n.bit_length() - 1) * 2
    while True:
        if depth < 0:
            _aheapsort(v, a, pl, pr - pl + 1)
        else:
            while pr - pl > SMALL_QUICKSORT:
                pm = pl + ((pr - pl) >> 1)
                if v[a[pm]] < v[a[pl]]:
                    a[pm], a[pl] = a[pl], a[pm]
                if v[a[pr]] < v[a[pm]]:
                    a[pr], a[pm] = a[pm], a[pr]
                if v[a[pm]] < v[a[pl]]:
                    a[pm], a[pl] = a[pl], a[pm]
                vp = v[a[pm]]
                pi, pj = pl, pr - 1
                a[pm], a[pj] = a[pj], a[pm]
                while True:
                    pi += 1
                    while v[a[pi]] < vp:
                        pi += 1
                    pj -= 1
                    while vp < v[a[pj]]:
                        pj -= 1
                    if pi >= pj:
                        break
                    a[pi], a[pj] = a[pj], a[pi]
                a[pi], a[pr - 1] = a[pr - 1], a[pi]
                depth -= 1
                if pi - pl < pr - pi:  # push the larger partition, go on with the smaller
                    stack.append((pi + 1, pr, depth))
                    pr = pi - 1
                else:
                    stack.append((pl, pi - 1, depth))
                    pl = pi + 1
            for pi in range(pl + 1, pr + 1):  # insertion sort
                vi = a[pi]
                vp = v[vi]
                pj = pi
                while pj > pl and vp < v[a[pj - 1]]:
                    a[pj] = a[pj - 1]
                    pj -= 1
                a[pj] = vi
        if not stack:
            break
        pl, pr, depth = stack.pop()
    return np.asarray(a, dtype=np.int64)


def authors_split(
    labels: np.ndarray, class_names: Sequence[str], ir: float, recipe: AuthorsRecipe
) -> AuthorsSplit:
    """The authors' LT train selection at ``ir`` over a pool (``labels`` in the source file order)."""
    labels = np.asarray(labels, dtype=np.int64)
    C = len(class_names)
    pool_counts = np.bincount(labels, minlength=C)
    order = sorted(range(C), key=lambda c: class_names[c]) if recipe.name_order else list(range(C))
    authors_label = np.empty(C, dtype=np.int64)
    authors_label[order] = np.arange(C)
    t = authors_label[labels]  # the loader's targets, in file order
    s = np.arange(len(labels), dtype=np.int64)  # which pool sample sits at each position
    if recipe.presort or recipe.rerank:
        i1 = argsort_introsort(t)
        t, s = t[i1], s[i1]
    if recipe.rerank:
        by_count = argsort_introsort(np.bincount(t, minlength=C))[::-1]  # rank r holds authors' label
        rank = np.empty(C, dtype=np.int64)
        rank[by_count] = np.arange(C)
        t = rank[t]
        i2 = argsort_introsort(t)
        t, s = t[i2], s[i2]
        order = [order[int(k)] for k in by_count]
    n_max = resolve_n_max(recipe.n_max, pool_counts)
    counts = lt_counts(n_max, C, ir)
    rng = np.random.RandomState(recipe.seed)
    chosen, short = [], []
    for r, n in enumerate(counts):
        pos = np.where(t == r)[0]
        if recipe.with_replacement:
            high = recipe.first_class_from if (r == 0 and recipe.first_class_from) else len(pos)
            draw = rng.choice(high, n)
            if len(draw) and draw.max() >= len(pos):
                raise LTBenchError(
                    f"class {order[r]} ({class_names[order[r]]}) has {len(pos)} pool images; the authors' "
                    f"{recipe.loader} draws its first class from {high}",
                    "use the official source files (30 train images in the first class)",
                )
            chosen.append(s[pos[draw]])
        else:
            rng.shuffle(pos)
            if len(pos) < n:
                short.append(f"{class_names[order[r]]} {len(pos)}/{n}")
            chosen.append(s[pos[:n]])
    notes = {}
    if short:
        notes["short classes"] = "the authors' slicing keeps fewer than the profile asks: " + ", ".join(short)
    idx = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)
    return AuthorsSplit(idx, order, n_max, list(counts), notes)


def duplicates(indices: np.ndarray) -> int:
    """How many rows repeat an earlier row (CUB's with-replacement draw)."""
    return int(len(indices) - len(np.unique(indices)))
