"""Head / medium / tail class groups.

- ``thirds`` (the 12 small sets and digits): classes sorted by LT train count, descending, ties by label;
  head = the first round(C/3), medium = up to round(2C/3), tail = the rest.
- ``shots`` (ImageNet-LT, Places-LT, iNat-LT; OLTR's ``shot_acc``): many-shot > 100 train images,
  few-shot < 20, medium otherwise (20 and 100 are medium).

A group with no classes stays empty; its accuracy is ``None`` and prints as N/A, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence

GROUPS = ("head", "medium", "tail")
RULES = {
    "thirds": "classes sorted by train count (descending, ties by label); head = first round(C/3), "
    "medium = up to round(2C/3), tail = the rest",
    "shots": "many-shot (head) > 100 train images, few-shot (tail) < 20, medium otherwise",
}


def group_classes(counts: Sequence[int], rule: str) -> dict[str, list[int]]:
    """Class indices of each group (sorted ascending) under ``rule``."""
    counts = [int(c) for c in counts]
    n = len(counts)
    if rule == "thirds":
        order = sorted(range(n), key=lambda c: (-counts[c], c))
        a, b = round(n / 3), round(2 * n / 3)
        groups = {"head": order[:a], "medium": order[a:b], "tail": order[b:]}
    elif rule == "shots":
        groups = {
            "head": [c for c in range(n) if counts[c] > 100],
            "medium": [c for c in range(n) if 20 <= counts[c] <= 100],
            "tail": [c for c in range(n) if counts[c] < 20],
        }
    else:
        raise ValueError(f"unknown grouping rule {rule!r}")
    return {g: sorted(v) for g, v in groups.items()}
