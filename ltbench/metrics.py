"""The metrics, as pure functions of labels and logits: per-class accuracy, avg (mean per-class = balanced
accuracy) / top-1 / top-5 / macro-F1 / head / medium / tail, ECE, and the group confusion summary ("tail
misclassified as head" rates).

``RESULT_METRICS`` names what a result file stores under ``metrics``. :mod:`ltbench.evaluate` runs a method's
predictions through :func:`summarize`; methods that diagnose a part of themselves (a teacher's test accuracy)
call :func:`summarize` directly, never the evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ltbench.groups import GROUPS, group_classes

RESULT_METRICS = (
    "avg",
    "top1",
    "top5",
    "macro_f1",
    "head",
    "medium",
    "tail",
    "ece",
    "tail_as_head",
    "medium_as_head",
    "tail_as_medium",
    "group_confusion",
)


def per_class_accuracy(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> list[float | None]:
    """Accuracy of each class on the test split (None for a class with no test images)."""
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float((preds[mask] == c).mean()) if mask.any() else None)
    return out


def top_k_accuracy(labels: np.ndarray, logits: np.ndarray, k: int = 5) -> float | None:
    """Fraction of images whose label is among the ``k`` largest logits (None when k >= classes: always 1)."""
    if logits.shape[1] <= k:
        return None
    topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((topk == labels[:, None]).any(1).mean())


def macro_f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float | None:
    """Mean over the classes present in ``labels`` of F1 = 2·TP / (2·TP + FP + FN)."""
    scores = []
    for c in range(num_classes):
        true, pred = labels == c, preds == c
        if not true.any():
            continue
        tp = float((true & pred).sum())
        scores.append(2 * tp / (2 * tp + float((~true & pred).sum()) + float((true & ~pred).sum())))
    return float(np.mean(scores)) if scores else None


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width confidence bins (right-closed, as Guo et al. 2017)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)


def group_confusion(
    labels: np.ndarray, preds: np.ndarray, groups: dict[str, list[int]], num_classes: int
) -> dict[str, dict[str, float] | None]:
    """For each true group, the fraction of its test images predicted as a class of each group.

    Image-weighted (all test images of the group's classes pooled), so each row sums to 1; a group with no
    classes or no test images gives ``None``. ``["tail"]["head"]`` is the "tail misclassified as head" rate.
    """
    group_of = np.full(num_classes, -1)
    for i, g in enumerate(GROUPS):
        group_of[np.asarray(groups[g], dtype=int)] = i
    true_g, pred_g = group_of[labels], group_of[preds]
    out: dict[str, dict[str, float] | None] = {}
    for i, g in enumerate(GROUPS):
        mask = true_g == i
        if not mask.any():
            out[g] = None
            continue
        out[g] = {h: float((pred_g[mask] == j).mean()) for j, h in enumerate(GROUPS)}
    return out


def summarize(
    labels: np.ndarray,
    logits: np.ndarray,
    train_counts: Sequence[int],
    groups: Mapping[str, Sequence[int]] | str,
) -> dict[str, Any]:
    """All metrics from test labels and logits; group accuracy = mean of its classes' accuracies.

    ``groups``: the head / medium / tail class ids (a split's ``info.groups``, read from its manifest), or a
    rule computable from the counts alone (``thirds``, ``shots``)."""
    num_classes = len(train_counts)
    preds = logits.argmax(1)
    acc = per_class_accuracy(labels, preds, num_classes)
    if isinstance(groups, str):
        groups = group_classes(train_counts, groups)
    groups = {g: [int(c) for c in groups[g]] for g in GROUPS}
    z = logits - logits.max(1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)

    def mean(cs: Sequence[int]) -> float | None:
        vals = [acc[c] for c in cs if acc[c] is not None]
        return float(np.mean(vals)) if vals else None

    confusion = group_confusion(labels, preds, groups, num_classes)

    def rate(true: str, pred: str) -> float | None:
        row = confusion[true]
        return None if row is None else row[pred]

    out: dict[str, Any] = {
        "avg": mean(range(num_classes)),
        "top1": float((preds == labels).mean()),
        "top5": top_k_accuracy(labels, logits, 5),
        "macro_f1": macro_f1(labels, preds, num_classes),
        **{g: mean(groups[g]) for g in GROUPS},
        "ece": expected_calibration_error(probs, labels),
        "tail_as_head": rate("tail", "head"),
        "medium_as_head": rate("medium", "head"),
        "tail_as_medium": rate("tail", "medium"),
        "group_confusion": confusion,
        "per_class": acc,
        "groups": groups,
    }
    return out
