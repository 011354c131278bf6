"""Method-agnostic evaluation: a method's predictions on a split, scored by :mod:`ltbench.metrics`.

The metric functions live in :mod:`ltbench.metrics` and are re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ltbench.metrics import (  # noqa: F401  (re-exported)
    RESULT_METRICS,
    expected_calibration_error,
    group_confusion,
    per_class_accuracy,
    summarize,
)


@torch.no_grad()
def predict_logits(
    method, model, task, split: str = "test", batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(logits, labels, test-time records): the method's ``prepare_predict`` runs first and returns what its
    test-time step did (``{}`` when it has none); the evaluator writes no shared state."""
    ds = task.eval_set(split)
    model.eval()
    records = method.prepare_predict(model, task) or {}
    outs, labels = [], []
    for images, y in DataLoader(ds, batch_size=batch_size, shuffle=False):
        outs.append(method.predict(model, images.to(task.device)).float().cpu())
        labels.append(y)
    return torch.cat(outs).numpy(), torch.cat(labels).numpy(), records


def evaluate(method, model, task, split: str = "test") -> dict[str, Any]:
    """:func:`summarize` of the method's predictions, plus ``test_time_records`` (its test-time step's)."""
    logits, labels, records = predict_logits(method, model, task, split)
    return {**summarize(labels, logits, task.class_counts, task.info.groups), "test_time_records": records}
