"""The evaluation blocks a result carries beside its main metrics (issue 16), computed in one place so the
runner's hook stays one call:

- ``test_distributions``: one metrics block per SADE test-agnostic distribution asked for (``--test-dist``);
- ``cost``: parameters, OPs, measured CPU latency (:mod:`ltbench.cost`);
- ``teacher_overlap``: whether pretrained weights the run used saw its test images (:mod:`ltbench.overlaps`);
- ``teacher_reference``: the calibrated FP teacher's own test metrics, where a method calibrates one (CANDLE,
  DiVE*), for the leaderboard's reference row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The result blocks this module writes (the leaderboard keeps them per run).
RESULT_BLOCKS = (
    "test_distributions",
    "test_distributions_protocol",
    "cost",
    "teacher_overlap",
    "teacher_reference",
)
#: Metrics of the teacher's reference row (a subset of ``ltbench.evaluate.RESULT_METRICS``).
REFERENCE_METRICS = ("avg", "top1", "top5", "macro_f1", "head", "medium", "tail")


@dataclass
class DistPlan:
    """The distributions a run evaluates, resolved before training so a bad name fails first."""

    names: list[str] = field(default_factory=list)
    block: dict[str, Any] = field(default_factory=dict)


def plan_test_dists(info, spec: str | None) -> DistPlan:
    if not spec:
        return DistPlan()
    from ltbench import test_dists

    block = test_dists.manifest_block(info)
    return DistPlan(test_dists.select(block, spec), block)


def teacher_reference(records: dict[str, Any]) -> dict[str, Any] | None:
    calib = records.get("teacher_calibration")
    if not isinstance(calib, dict):
        return None
    teacher = records.get("teacher") or {}
    return {
        "encoder": teacher.get("encoder"),
        "metrics": {k: calib.get(k) for k in REFERENCE_METRICS},
        "measured": "on the test split after calibration (candle.calibration.teacher_accuracy)",
    }


def result_extras(
    method,
    model,
    eval_model,
    task,
    records: dict[str, Any],
    inference: dict[str, Any],
    config: dict[str, Any],
    plan: DistPlan,
) -> dict[str, Any]:
    """The result's issue-16 blocks; ``records`` are the fit's (:meth:`ltbench.method.Method.fit_with_records`)."""
    from ltbench import overlaps
    from ltbench.cost import measure_cost
    from ltbench.test_dists import evaluate_distributions

    out: dict[str, Any] = {}
    if plan.names:
        out["test_distributions"] = evaluate_distributions(method, eval_model, task, plan.names, plan.block)
        out["test_distributions_protocol"] = {
            k: v for k, v in plan.block.items() if k not in ("distributions",)
        }
    out["cost"] = measure_cost(method, model, eval_model, task, inference.get("path", "float"))
    source = task.info.manifest["source"]
    out["teacher_overlap"] = overlaps.check(source, overlaps.used_weights(records, config))
    ref = teacher_reference(records)
    if ref is not None:
        out["teacher_reference"] = ref
    return out
