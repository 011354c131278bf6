"""Train / eval transforms (torchvision transforms v2 on uint8 CHW tensors): thin wrappers over the dataset's
:class:`~ltbench.families.Family`, which defines them (see :mod:`ltbench.families` for each family's recipe).

Methods should ask their task (``task.train_transform()``, ``task.eval_transform()``, ``task.mean_std()``), which
knows the family and the backbone's input size; these functions serve code that holds only a family name.
"""

from __future__ import annotations

from ltbench.families import (
    CIFAR_MEAN_STD,
    GREY_MEAN_STD,
    IMAGENET_MEAN_STD,
    SMALL_INPUT,
    Cutout,
    get_family,
)

__all__ = ["MEAN_STD", "SMALL_INPUT", "Cutout", "eval_transform", "in_chans", "mean_std", "train_transform"]

#: The normalisation constants by name (defined in :mod:`ltbench.families`).
MEAN_STD = {"digits": GREY_MEAN_STD, "imagenet": IMAGENET_MEAN_STD, "cifar": CIFAR_MEAN_STD}


def mean_std(family: str, input_size: int | None = None):
    return get_family(family).mean_std(input_size)


def train_transform(
    family: str,
    input_size: int | None = None,
    augment: bool = True,
    auto_augment: str | None = None,
    cutout: int = 0,
):
    return get_family(family).train_transform(input_size, augment, auto_augment, cutout)


def eval_transform(family: str, input_size: int | None = None):
    return get_family(family).eval_transform(input_size)


def in_chans(family: str) -> int:
    return get_family(family).channels
