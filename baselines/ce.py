"""Cross-entropy baseline: one stage of plain softmax CE with instance-balanced sampling.

Recipes: ``binary`` follows the CANDLE paper's protocol for binary backbones (App. D/G: Adam, no weight decay,
cosine from lr 0.01); ``official`` is the CIFAR-LT literature's ResNet-32 recipe (LDAM-DRW: SGD m0.9, lr 0.1,
wd 2e-4, 200 epochs, 5-epoch warm-up, ×0.01 at 160 and ×1e-4 at 180). Digits runs are short.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ltbench.method import BINARY_PROTOCOL, DIGITS_RECIPE, Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.trainer import Trainer


@METHODS.register("ce")
class CE(Method):
    Config = TrainConfig
    recipes = {
        "binary": BINARY_PROTOCOL,
        "binary/digits": {**DIGITS_RECIPE, "lr": 0.002},
        "official": {
            "optimizer": "sgd",
            "lr": 0.1,
            "weight_decay": 2e-4,
            "epochs": 200,
            "warmup_epochs": 5,
            "schedule": "multistep",
            "milestones": (160, 180),
            "gamma": 0.01,
        },
        "official/digits": DIGITS_RECIPE,
    }
    stages = "1: joint CE"
    follows = "standard softmax cross-entropy (LDAM-DRW's CIFAR recipe for FP backbones)"

    def fit(self, task: Task) -> nn.Module:
        model = task.create_model()
        Trainer(task, self.config, "ce").fit(
            {"model": model}, model.parameters(), lambda x, y: F.cross_entropy(model(x), y), task.train_set()
        )
        return model
