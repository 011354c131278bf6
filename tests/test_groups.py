"""Grouping rules on hand-made counts."""

from __future__ import annotations

import numpy as np

from ltbench.evaluate import summarize
from ltbench.groups import group_classes


def test_thirds_sorted_by_count_ties_by_label():
    counts = [5, 50, 20, 20, 1, 100]
    g = group_classes(counts, "thirds")
    # sorted: 5(100), 1(50), 2(20), 3(20), 0(5), 4(1) -> round(6/3)=2, round(12/3)=4
    assert g == {"head": [1, 5], "medium": [2, 3], "tail": [0, 4]}


def test_thirds_ten_classes_is_3_4_3():
    g = group_classes([100, 77, 59, 46, 35, 27, 21, 16, 12, 10], "thirds")
    assert g == {"head": [0, 1, 2], "medium": [3, 4, 5, 6], "tail": [7, 8, 9]}


def test_shots_thresholds_are_strict_and_20_100_are_medium():
    g = group_classes([101, 100, 20, 19, 500, 5], "shots")
    assert g == {"head": [0, 4], "medium": [1, 2], "tail": [3, 5]}


def test_empty_group_is_none_not_zero():
    counts = [30, 25, 10, 5]  # no class above 100 → head empty under `shots`
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    logits = np.eye(4)[[0, 1, 2, 0, 0, 1, 2, 3]]
    m = summarize(labels, logits, counts, "shots")
    assert m["head"] is None
    assert m["medium"] == 1.0  # classes 0, 1 (30, 25 images)
    assert m["tail"] == 0.75  # class 2: 1.0, class 3: 0.5
    assert m["avg"] == 0.875 and m["top1"] == 7 / 8
