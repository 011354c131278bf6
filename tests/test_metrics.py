"""ECE and the group confusion summary on examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ltbench.evaluate import RESULT_METRICS, expected_calibration_error, group_confusion, summarize


def _probs(conf_and_pred: list[tuple[float, int]]) -> np.ndarray:
    """Two-class probability rows whose max is ``conf`` at class ``pred``."""
    rows = []
    for conf, pred in conf_and_pred:
        row = [1 - conf, 1 - conf]
        row[pred] = conf
        rows.append(row)
    return np.array(rows)


def test_ece_hand_example():
    # confidence, predicted class, true label → correct?
    #   0.90 → 0 (label 0, right)   0.88 → 0 (label 1, wrong): same bin (13/15, 14/15]: |1/2 − 0.89| = 0.39
    #   0.78 → 0 (label 1, wrong): bin (11/15, 12/15]: |0 − 0.78| = 0.78
    #   0.70 → 1 (label 1, right): bin (10/15, 11/15]: |1 − 0.70| = 0.30
    #   0.55 → 1 (label 1, right): bin (8/15, 9/15]:   |1 − 0.55| = 0.45
    probs = _probs([(0.9, 0), (0.88, 0), (0.78, 0), (0.7, 1), (0.55, 1)])
    labels = np.array([0, 1, 1, 1, 1])
    expected = 2 / 5 * 0.39 + 1 / 5 * 0.78 + 1 / 5 * 0.30 + 1 / 5 * 0.45
    assert expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.462)
    # one bin: |accuracy − mean confidence| = |3/5 − 0.762|
    assert expected_calibration_error(probs, labels, bins=1) == pytest.approx(0.162, abs=1e-12)


def test_ece_of_a_perfectly_calibrated_bin_is_zero():
    probs = _probs([(0.75, 0)] * 4)
    labels = np.array([0, 0, 0, 1])  # 3/4 right at confidence 0.75
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_group_confusion_hand_example():
    groups = {"head": [0, 1], "medium": [2, 3], "tail": [4, 5]}
    labels = np.array([0, 1, 2, 3, 3, 4, 4, 5, 5])
    preds = np.array([0, 5, 2, 0, 3, 0, 4, 2, 1])
    conf = group_confusion(labels, preds, groups, 6)
    assert conf["head"] == {"head": 0.5, "medium": 0.0, "tail": 0.5}
    assert conf["medium"] == pytest.approx({"head": 1 / 3, "medium": 2 / 3, "tail": 0.0})
    assert conf["tail"] == {"head": 0.5, "medium": 0.25, "tail": 0.25}


def test_summarize_stores_confusion_rates_and_ece():
    counts = [100, 60, 30, 20, 10, 5]  # thirds: head {0, 1}, medium {2, 3}, tail {4, 5}
    labels = np.array([0, 1, 2, 3, 3, 4, 4, 5, 5])
    preds = np.array([0, 5, 2, 0, 3, 0, 4, 2, 1])
    logits = np.full((len(labels), 6), -3.0)
    logits[np.arange(len(labels)), preds] = 2.0
    m = summarize(labels, logits, counts, "thirds")
    assert set(RESULT_METRICS) <= set(m)
    assert m["tail_as_head"] == 0.5 and m["tail_as_medium"] == 0.25
    assert m["medium_as_head"] == pytest.approx(1 / 3)
    assert m["tail"] == pytest.approx((0.5 + 0.0) / 2)  # class 4: 1 of 2 right, class 5: 0 of 2
    z = np.exp(logits - logits.max(1, keepdims=True))
    assert m["ece"] == pytest.approx(expected_calibration_error(z / z.sum(1, keepdims=True), labels))


def test_empty_group_gives_none_not_zero():
    counts = [500, 300, 150, 60, 40, 25]  # shots: no class under 20 ⇒ empty tail
    labels = np.array([0, 1, 2, 3, 4, 5])
    logits = np.eye(6)[[0, 1, 2, 3, 0, 5]]
    m = summarize(labels, logits, counts, "shots")
    assert m["tail"] is None and m["tail_as_head"] is None and m["group_confusion"]["tail"] is None
    assert m["medium_as_head"] == pytest.approx(1 / 3)
