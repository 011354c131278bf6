"""Train / eval transforms per dataset family (torchvision transforms v2 on uint8 CHW tensors).

- ``digits`` (8×8 grey): light affine (±10°, ±10 % shift, 0.9–1.1 scale); normalised with 0.5/0.5.
- native small inputs (a backbone whose ``input_size`` ≤ 64, e.g. ``resnet32`` at 32): the CIFAR recipe,
  resize to the input size, RandomCrop with ``size/8`` zero padding (4 px at 32) + horizontal flip; CIFAR
  mean/std.
- everything else (224 and up): RandomResizedCrop(size, scale 0.08–1) + flip for training; resize to
  size·256/224 and centre-crop for evaluation; ImageNet mean/std.

Options a method may ask for: ``auto_augment`` (torchvision AutoAugment policy ``cifar10`` | ``imagenet`` |
``svhn``, before normalisation) and ``cutout`` (DeVries & Taylor: one square of side ``cutout`` px set to 0
after scaling to [0, 1] and before normalisation, centred uniformly, clipped at the border — the ``Cutout`` of
BALMS's and PaCo's ``autoaug.py``, placed as their CIFAR transforms place it).
``augment=False`` gives the eval geometry with the training normalisation.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

MEAN_STD = {
    "digits": ((0.5,), (0.5,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}
SMALL_INPUT = 64  # input sizes up to this use the CIFAR recipe


class Cutout(torch.nn.Module):
    """Zero the square [cy − size//2, cy + size//2) × [cx − size//2, cx + size//2) around a uniform pixel,
    clipped at the border (the official ``Cutout(n_holes=1, length=size)``)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - self.size // 2, 0), min(cy + self.size // 2, h)
        x0, x1 = max(cx - self.size // 2, 0), min(cx + self.size // 2, w)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0
        return img


def mean_std(family: str, input_size: int | None = None):
    if family == "digits":
        return MEAN_STD["digits"]
    return MEAN_STD["cifar"] if (input_size or 224) <= SMALL_INPUT else MEAN_STD["imagenet"]


def train_transform(
    family: str,
    input_size: int | None = None,
    augment: bool = True,
    auto_augment: str | None = None,
    cutout: int = 0,
):
    to_float = [v2.ToDtype(torch.float32, scale=True), *([Cutout(cutout)] if cutout else [])]
    norm = [*to_float, v2.Normalize(*mean_std(family, input_size))]
    if family == "digits":
        ops = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment else []
    else:
        size = input_size or 224
        if not augment:
            ops = _resize(size)
        elif size <= SMALL_INPUT:
            ops = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
            ops += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
        else:
            ops = [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
    if auto_augment:
        ops.append(v2.AutoAugment(v2.AutoAugmentPolicy(auto_augment.lower())))
    return v2.Compose([*ops, *norm])


def eval_transform(family: str, input_size: int | None = None):
    norm = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(*mean_std(family, input_size))]
    if family == "digits":
        return v2.Compose(norm)
    return v2.Compose([*_resize(input_size or 224), *norm])


def _resize(size: int):
    if size <= SMALL_INPUT:
        return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return [v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)]


def in_chans(family: str) -> int:
    return 1 if family == "digits" else 3
