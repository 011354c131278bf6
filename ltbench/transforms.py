"""Train / eval transforms per dataset family (torchvision transforms v2 on uint8 CHW tensors)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

MEAN_STD = {
    "digits": ((0.5,), (0.5,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def train_transform(family: str, input_size: int | None = None, augment: bool = True):
    if family == "digits":
        ops = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment else []
        return v2.Compose([*ops, v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD["digits"])])
    size = input_size or 224
    ops = (
        [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()] if augment else _resize(size)
    )
    return v2.Compose([*ops, v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD["imagenet"])])


def eval_transform(family: str, input_size: int | None = None):
    if family == "digits":
        return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD["digits"])])
    size = input_size or 224
    return v2.Compose(
        [*_resize(size), v2.ToDtype(torch.float32, scale=True), v2.Normalize(*MEAN_STD["imagenet"])]
    )


def _resize(size: int):
    return [v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)]


def in_chans(family: str) -> int:
    return 1 if family == "digits" else 3
