"""The one way a method uses another method as its teacher ("the teacher is another method").

:func:`fit_teacher` resolves the registered method's config exactly as ``ltbench run`` would for the same task
(its recipe for the backbone kind and family, then ``sets``), trains it in its own run directory with its own
records, and returns the frozen teacher with a diagnosis of its test accuracy (no selection reads it).
DiVE's BALMS teacher and DiVE*'s CANDLE teacher come from here; a method chooses *what* of itself teaches
through :meth:`ltbench.method.Method.teacher`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ltbench.config import resolve_config, to_dict
from ltbench.method import Task
from ltbench.metrics import summarize
from ltbench.registry import METHODS


@dataclass
class FittedTeacher:
    """A trained, frozen teacher: ``forward(x)`` gives no-grad logits of the student's input batch."""

    name: str
    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    config: dict[str, Any]
    records: dict[str, Any]

    def diagnosis(self, task: Task, split: str = "test") -> dict[str, float | None]:
        """{avg, head, medium, tail} of the teacher on ``split`` (for the result only)."""
        outs, labels = [], []
        self.model.eval()
        with torch.no_grad():
            for images, y in DataLoader(task.eval_set(split), batch_size=256, shuffle=False):
                outs.append(self.forward(images.to(task.device)).float().cpu())
                labels.append(y)
        m = summarize(torch.cat(labels).numpy(), torch.cat(outs).numpy(), task.class_counts, task.info.groups)
        return {k: m[k] for k in ("avg", "head", "medium", "tail")}


def fit_teacher(name: str, task: Task, sets: Mapping[str, str] | None = None) -> FittedTeacher:
    """Train registered method ``name`` as a teacher on ``task`` (run dir ``<run_dir>/teacher``)."""
    method_cls = METHODS.get(name)
    cfg = resolve_config(method_cls, task.binary, task.family, sets=dict(sets or {}))
    sub = dataclasses.replace(task, run_dir=task.run_dir / "teacher", records={})
    model, forward = method_cls(cfg).teacher(sub)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return FittedTeacher(name, model, forward, to_dict(cfg), sub.records)
