"""Cross-entropy baseline: one stage of plain softmax CE with instance-balanced sampling.

Recipes (:mod:`ltbench.recipes`): ``official`` is the CIFAR-LT literature's ResNet-32 recipe (LDAM-DRW: SGD
m0.9, lr 0.1, wd 2e-4, 200 epochs, 5-epoch warm-up, ×0.01 at 160 and ×1e-4 at 180); ``binary`` is the same
schedule under Adam, lr 0.01, no weight decay. Digits runs are short.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.trainer import Trainer


@METHODS.register("ce")
class CE(Method):
    Config = TrainConfig
    stages = "1: joint CE"
    follows = "standard softmax cross-entropy (LDAM-DRW's CIFAR recipe for FP backbones)"

    def fit(self, task: Task) -> nn.Module:
        model = task.create_model()
        Trainer(task, self.config, "ce").fit(
            {"model": model}, model.parameters(), lambda x, y: F.cross_entropy(model(x), y), task.train_set()
        )
        return model
