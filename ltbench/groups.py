"""Head / medium / tail class groups.

- ``authors`` (the 12 small sets; the CANDLE authors' ``class_dict`` in gistvision/SADE-AgnosticLT f0c042c
  ``custum_data/new_dataset.py``): fixed sizes over the LT class order (the order the profile's counts were
  given in): head = the first a classes, medium = up to b, tail = the rest, (a, b) per source
  (``AuthorsRecipe.groups``; e.g. CUB-200 72 / 70 / 58).
- ``thirds``: classes sorted by LT train count, descending, ties by label; head = the first round(C/3),
  medium = up to round(2C/3), tail = the rest.
- ``shots`` (ImageNet-LT, Places-LT, iNat-LT; OLTR's ``shot_acc``): many-shot > 100 train images,
  few-shot < 20, medium otherwise (20 and 100 are medium).

A build stores its groups in ``manifest["groups"]`` (``rule``, ``description``, ``head``, ``medium``,
``tail``); the evaluator reads them from there (:func:`manifest_groups`). A group with no classes stays empty;
its accuracy is ``None`` and prints as N/A, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

GROUPS = ("head", "medium", "tail")
RULES = {
    "authors": "the CANDLE authors' class_dict sizes over the LT class order (head = the first a classes, "
    "medium = up to b, tail = the rest)",
    "thirds": "classes sorted by train count (descending, ties by label); head = first round(C/3), "
    "medium = up to round(2C/3), tail = the rest",
    "shots": "many-shot (head) > 100 train images, few-shot (tail) < 20, medium otherwise",
}


def group_classes(
    counts: Sequence[int],
    rule: str,
    *,
    order: Sequence[int] | None = None,
    bounds: tuple[int, int] | None = None,
) -> dict[str, list[int]]:
    """Class indices of each group (sorted ascending) under ``rule``; ``authors`` needs the LT ``order`` and the
    source's ``bounds`` (a, b)."""
    counts = [int(c) for c in counts]
    n = len(counts)
    if rule == "authors":
        if order is None or bounds is None:
            raise ValueError("the authors rule needs the LT class order and the source's bounds")
        a, b = bounds
        order = list(order)
        groups = {"head": order[:a], "medium": order[a:b], "tail": order[b:]}
    elif rule == "thirds":
        ranked = sorted(range(n), key=lambda c: (-counts[c], c))
        a, b = round(n / 3), round(2 * n / 3)
        groups = {"head": ranked[:a], "medium": ranked[a:b], "tail": ranked[b:]}
    elif rule == "shots":
        groups = {
            "head": [c for c in range(n) if counts[c] > 100],
            "medium": [c for c in range(n) if 20 <= counts[c] <= 100],
            "tail": [c for c in range(n) if counts[c] < 20],
        }
    else:
        raise ValueError(f"unknown grouping rule {rule!r}")
    return {g: sorted(v) for g, v in groups.items()}


def describe(rule: str, bounds: tuple[int, int] | None = None, num_classes: int | None = None) -> str:
    """The rule's one-line description; for ``authors`` with the source's sizes."""
    if rule == "authors" and bounds is not None and num_classes is not None:
        a, b = min(bounds[0], num_classes), min(bounds[1], num_classes)
        return (
            f"{RULES['authors']}; here {a} / {b - a} / {num_classes - b} (class_dict of gistvision/"
            "SADE-AgnosticLT f0c042c custum_data/new_dataset.py)"
        )
    return RULES[rule]


def manifest_groups(manifest: Mapping[str, Any]) -> dict[str, list[int]]:
    """The head / medium / tail class ids a build stored (builds before the ``authors`` rule kept them under
    ``groups.classes``)."""
    g = manifest["groups"]
    src = g["classes"] if "classes" in g and "head" not in g else g
    return {k: sorted(int(c) for c in src[k]) for k in GROUPS}
