"""Watch what a method hands the shared Trainer: per stage, its config, its step function, the labels of every
batch it saw. Tests use it to pin a method's protocol (sampler, loss, stage order) end to end, so that a change
anywhere in the method body — not only in one helper — makes them fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch


@dataclass
class StageSeen:
    name: str
    cfg: Any
    step: Any
    modules: dict[str, torch.nn.Module]
    dataset: Any
    labels: list[np.ndarray] = field(default_factory=list)

    def label_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(np.concatenate(self.labels), minlength=num_classes)


@pytest.fixture
def spy(monkeypatch) -> dict[str, StageSeen]:
    """``{stage name: StageSeen}`` of every ``Trainer.fit`` call made while the test runs."""
    from ltbench.trainer import Trainer

    seen: dict[str, StageSeen] = {}
    real_fit = Trainer.fit

    def fit(self, modules, params, step, dataset, *args, **kwargs):
        rec = StageSeen(self.stage, self.cfg, step, modules, dataset)
        seen[self.stage] = rec

        def watched(images, labels):
            rec.labels.append(labels.detach().cpu().numpy().copy())
            return step(images, labels)

        return real_fit(self, modules, params, watched, dataset, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    return seen
