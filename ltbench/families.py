"""Image families: what a dataset's images are and how every part of ltbench treats them.

A source names its family once (``SourceSpec.scale``; the built split's manifest stores it as ``family``).
Everything that depends on the kind of image — decode mode and channels, normalisation, train / eval
transforms, the default backbone, CANDLE's teacher and its resolutions, whether the recipes are demo-length —
reads the :class:`Family` here, so no other module switches on a family's name.

Families:

- ``digits`` (scikit-learn 8×8 grey): light affine (±10°, ±10 % shift, 0.9–1.1 scale), normalised 0.5/0.5; no
  resize; ``reactnet-a-tiny``; teacher = the small FP CNN pretrained on digits' ``pretrain`` split; teacher
  resolutions 4/8/16 (½, 1, 2 × the native 8 px).
- ``small`` (the paper's 12 small sets) and ``large`` (ImageNet-LT, Places-LT, iNat-LT), natural RGB images:
  a backbone with a native input ≤ 64 px (e.g. ``resnet32``) gets the CIFAR recipe — resize to the input size,
  RandomCrop with ``size/8`` zero padding (4 px at 32) + flip, CIFAR mean/std; larger inputs get
  RandomResizedCrop(size, 0.08–1) + flip for training and resize to size·256/224 + centre crop for evaluation,
  ImageNet mean/std. Teachers: ResNet-152 (ImageNet-1K) for ``small``, EfficientNetV2-M (ImageNet-21K) for
  ``large``; resolutions 128/224/480 scaled to the student's input; ``large`` is single-resolution by default
  (the paper's Table 2 †).

Options a method may ask for: ``auto_augment`` (torchvision AutoAugment policy ``cifar10`` | ``imagenet`` |
``svhn``, before normalisation) and ``cutout`` (DeVries & Taylor: one square of side ``cutout`` px set to 0 after
scaling to [0, 1] and before normalisation). ``augment=False`` gives the eval geometry with the training
normalisation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ltbench.errors import LTBenchError

MeanStd = tuple[tuple[float, ...], tuple[float, ...]]

IMAGENET_MEAN_STD: MeanStd = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR_MEAN_STD: MeanStd = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
GREY_MEAN_STD: MeanStd = ((0.5,), (0.5,))
SMALL_INPUT = 64  # natural-image inputs up to this size use the CIFAR recipe
DEFAULT_INPUT = 224
PAPER_RESOLUTIONS = (128, 224, 480)  # Tan & Le (2019), base 224 (CANDLE Alg. 2, App. D)


class Cutout(torch.nn.Module):
    """Zero the square [cy − size//2, cy + size//2) × [cx − size//2, cx + size//2) around a uniform pixel,
    clipped at the border (the official ``Cutout(n_holes=1, length=size)``), applied after scaling to [0, 1]
    and before normalisation (as BALMS's and PaCo's CIFAR transforms place it)."""

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


class NearestRandomAffine(torch.nn.Module):
    """torchvision's ``v2.RandomAffine(..., interpolation=NEAREST)`` with the same random draws and the same
    output pixels, the warp of a plain ``[..., H, W]`` tensor done as one NumPy gather: torchvision's dispatch,
    ``affine_grid`` and ``grid_sample`` cost ≈ 270 µs per 8×8 digit, over half of the digits loader's time
    (``D1`` in ``benchmarks/bench_train.py``). The source pixel of each output pixel is computed as torchvision computes it (its inverse matrix,
    the float32 grid ``base · θᵀ / (W/2, H/2)``, ``grid_sample``'s unnormalisation ``((g + 1)·W − 1)/2`` and
    round-half-even); outside the image the pixel is 0. Other inputs (tv_tensors, a non-zero fill, a centre)
    go through torchvision itself. ``tests/test_transforms.py`` checks equality with ``v2.RandomAffine``."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        from torchvision.transforms import v2

        self.reference = v2.RandomAffine(**kwargs)

    def _handles(self, img: Any, ndim: int = 2) -> bool:
        from torchvision.transforms.v2._utils import _get_fill

        ref = self.reference
        return (
            type(img) is torch.Tensor
            and img.ndim >= ndim
            and img.device.type == "cpu"
            and not img.requires_grad
            and getattr(ref.interpolation, "value", ref.interpolation) == "nearest"
            and ref.center is None
            and _get_fill(ref._fill, type(img)) in (None, 0)
        )

    def forward(self, img: Any) -> Any:
        if not self._handles(img):
            return self.reference(img)
        return _nearest_affine(img[None], [self.reference.make_params([img])])[0]

    def batch(self, imgs: torch.Tensor) -> torch.Tensor:
        """``torch.stack([self(img) for img in imgs])``, the same draws in the same order, warped in one gather."""
        if not self._handles(imgs, ndim=3):
            return torch.stack([self(img) for img in imgs])
        return _nearest_affine(imgs, [self.reference.make_params([img]) for img in imgs])


def _nearest_affine(imgs: torch.Tensor, params: list[dict[str, Any]]) -> torch.Tensor:
    """Warp image ``b`` of ``imgs`` (B, ..., H, W) by ``params[b]`` (``RandomAffine.make_params``' dict)."""
    h, w = imgs.shape[-2:]
    xs, ys, half, one, two = _grid_constants(h, w)
    # (B, 3, 2, 1, 1): each image's float32 grid matrix, broadcast over its (H, W) grid
    theta = np.stack([_grid_matrix(p, half) for p in params])[..., None, None]
    gx = xs * theta[:, 0, 0] + ys * theta[:, 1, 0] + theta[:, 2, 0]
    gy = xs * theta[:, 0, 1] + ys * theta[:, 1, 1] + theta[:, 2, 1]
    ix = np.rint(((gx + one) * np.float32(w) - one) / two).astype(np.intp)
    iy = np.rint(((gy + one) * np.float32(h) - one) / two).astype(np.intp)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    b, y, x = np.nonzero(inside)
    src = np.moveaxis(imgs.numpy().reshape(len(imgs), -1, h, w), 1, -1)  # (B, H, W, rest)
    out = np.zeros(src.shape, dtype=src.dtype)
    out[b, y, x] = src[b, iy[inside], ix[inside]]
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, -1, 1))).reshape(imgs.shape)


def _grid_matrix(p: dict[str, Any], half: np.ndarray) -> np.ndarray:
    """torchvision's float32 ``theta`` (3, 2) of one ``make_params`` draw, divided by ``(W/2, H/2)``."""
    from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

    shift = [float(t) for t in p["translate"]]
    matrix = _get_inverse_affine_matrix([0.0, 0.0], p["angle"], shift, p["scale"], list(p["shear"]))
    return np.asarray(matrix, dtype=np.float32).reshape(2, 3).T / half


def batch_transform(transform: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function of a stacked batch (B, C, H, W) giving, image by image, exactly ``transform(image)`` with the
    same random draws in the same order, for a ``v2.Compose`` of ``ToDtype`` / ``Normalize`` and at most one
    :class:`NearestRandomAffine` (one random op: drawing it for the whole batch first keeps the per-image
    order). ``None`` for any other transform (the caller then transforms image by image)."""
    from torchvision.transforms import v2

    ops = list(transform.transforms) if isinstance(transform, v2.Compose) else [transform]
    deterministic = (v2.ToDtype, v2.Normalize)
    randoms = [op for op in ops if not isinstance(op, deterministic)]
    if len(randoms) > 1 or any(type(op) is not NearestRandomAffine for op in randoms):
        return None

    def apply(imgs: torch.Tensor) -> torch.Tensor:
        for op in ops:
            imgs = op.batch(imgs) if isinstance(op, NearestRandomAffine) else op(imgs)
        return imgs

    return apply


@functools.lru_cache(maxsize=16)
def _grid_constants(h: int, w: int):
    """torchvision's output-pixel centres (``linspace((1 − W)/2, (W − 1)/2, W)``, exact in float32), the
    ``(W/2, H/2)`` divisor and the float32 constants of ``grid_sample``'s unnormalisation."""
    f32 = np.float32
    xs = (np.arange(w, dtype=f32) - f32((w - 1) * 0.5))[None, :]
    ys = (np.arange(h, dtype=f32) - f32((h - 1) * 0.5))[:, None]
    return xs, ys, np.asarray([0.5 * w, 0.5 * h], dtype=f32), f32(1), f32(2)


def _resize_ops(size: int) -> list:
    from torchvision.transforms import v2

    if size <= SMALL_INPUT:
        return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return [v2.Resize(int(size * 256 / 224), antialias=True), v2.CenterCrop(size)]


def _natural_train_ops(size: int, augment: bool) -> list:
    from torchvision.transforms import v2

    if not augment:
        return _resize_ops(size)
    if size <= SMALL_INPUT:
        return [*_resize_ops(size), v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
    return [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]


def _natural_mean_std(size: int) -> MeanStd:
    return CIFAR_MEAN_STD if size <= SMALL_INPUT else IMAGENET_MEAN_STD


def _affine_train_ops(size: int, augment: bool) -> list:
    return [NearestRandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))] if augment else []


def _native_eval_ops(size: int) -> list:
    return []


def _paper_resolutions(base: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, round(r * base / DEFAULT_INPUT)) for r in PAPER_RESOLUTIONS}))


@dataclass(frozen=True)
class Family:
    """One image family; see the module docstring for the registered ones."""

    name: str
    mode: str  # PIL decode mode: "L" | "RGB"
    channels: int
    default_backbone: str
    teacher: str  # CANDLE's teacher encoder (ltbench.teachers.ENCODERS)
    native_size: int | None = None  # images are this size natively (None: varies, resized to the input)
    demo: bool = False  # recipes for this family are short demo recipes (ltbench.recipes)
    multires: bool = True  # CANDLE's teacher is multi-resolution by default
    #: the official code's style for method-specific views (PaCo's key/query views, TADE's test-time views,
    #: BALMS's stage-1 AutoAugment+Cutout): ``grey`` (no colour ops), ``cifar`` (the official CIFAR views),
    #: ``imagenet`` (the official ImageNet ones)
    views: Literal["grey", "cifar", "imagenet"] = "imagenet"
    #: the paper set whose per-dataset settings (ε table, MiSLAS stage 2) a source outside the tables takes
    #: (None: CIFAR-10 for ≤ 10 classes, else CIFAR-100)
    stand_in_source: str | None = None
    resolutions_at_native: tuple[int, ...] = ()  # teacher resolutions when the student's input is native
    train_ops: Callable[[int, bool], list] = field(default=_natural_train_ops, repr=False)
    eval_ops: Callable[[int], list] = field(default=_resize_ops, repr=False)
    stats: Callable[[int], MeanStd] = field(default=_natural_mean_std, repr=False)

    def stand_in(self, num_classes: int) -> str:
        return self.stand_in_source or ("cifar10" if num_classes <= 10 else "cifar100")

    def input_size(self, input_size: int | None) -> int:
        return input_size or self.native_size or DEFAULT_INPUT

    def mean_std(self, input_size: int | None = None) -> MeanStd:
        return self.stats(self.input_size(input_size))

    def normalize_ops(self, input_size: int | None = None, cutout: int = 0) -> list:
        """To float in [0, 1], optional Cutout, then the family's normalisation."""
        from torchvision.transforms import v2

        to_float = [v2.ToDtype(torch.float32, scale=True), *([Cutout(cutout)] if cutout else [])]
        return [*to_float, v2.Normalize(*self.mean_std(input_size))]

    def train_transform(
        self,
        input_size: int | None = None,
        augment: bool = True,
        auto_augment: str | None = None,
        cutout: int = 0,
    ):
        from torchvision.transforms import v2

        ops = list(self.train_ops(self.input_size(input_size), augment))
        if auto_augment:
            ops.append(v2.AutoAugment(v2.AutoAugmentPolicy(auto_augment.lower())))
        return v2.Compose([*ops, *self.normalize_ops(input_size, cutout)])

    def eval_transform(self, input_size: int | None = None):
        from torchvision.transforms import v2

        return v2.Compose([*self.eval_ops(self.input_size(input_size)), *self.normalize_ops(input_size)])

    def teacher_resolutions(self, base: int) -> tuple[int, ...]:
        """CANDLE's teacher resolutions around a student input of ``base`` px."""
        if self.resolutions_at_native and base == self.native_size:
            return self.resolutions_at_native
        return _paper_resolutions(base)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "digits",
            mode="L",
            channels=1,
            default_backbone="reactnet-a-tiny",
            teacher="digits",
            native_size=8,
            demo=True,
            views="grey",
            resolutions_at_native=(4, 8, 16),  # the paper's ratios around 8 px (≈0.57×, 1×, 2.14× → ½, 1, 2)
            train_ops=_affine_train_ops,
            eval_ops=_native_eval_ops,
            stats=lambda size: GREY_MEAN_STD,
        ),
        Family(
            "small", mode="RGB", channels=3, default_backbone="reactnet-a", teacher="resnet152", views="cifar"
        ),
        Family(
            "large",
            mode="RGB",
            channels=3,
            default_backbone="reactnet-a",
            teacher="efficientnetv2-m-in21k",
            multires=False,
            stand_in_source="imagenet-lt",
        ),
    )
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise LTBenchError(f"unknown image family {name!r}", f"choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_names() -> list[str]:
    return list(FAMILIES)


def family_of_source(source: str) -> str:
    """The family a registered source names (``SourceSpec.scale``)."""
    from ltbench.registry import DATASETS

    return DATASETS.get(source).scale


def family_of_dataset(name: str, data_root: Any = None) -> tuple[str, str]:
    """(source, family) of a dataset name (``cifar100-lt100``, ``imagenet-lt``) without building it: from its
    manifest when it is built under ``data_root``, else from the source registry by the longest source name
    the dataset name starts with."""
    from pathlib import Path

    from ltbench.registry import DATASETS

    if data_root is not None:
        for path in (Path(name), Path(data_root) / name):
            if (path / "manifest.json").exists():
                from ltbench.manifest import read_manifest

                m = read_manifest(path)
                return m["source"], m.get("family") or family_of_source(m["source"])
    matches = [s for s in DATASETS.names() if name == s or name.startswith(f"{s}-lt")]
    if not matches:
        raise LTBenchError(
            f"{name!r} names no registered source",
            f"dataset names are SOURCE or SOURCE-ltIR; sources: {', '.join(DATASETS.names())}",
        )
    source = max(matches, key=len)
    return source, family_of_source(source)


def family_rows() -> list[list[Any]]:
    """One docs row per family."""

    def res(f: Family) -> str:
        native = (
            f"{'/'.join(map(str, f.resolutions_at_native))} at {f.native_size} px; "
            if f.resolutions_at_native
            else ""
        )
        single = "" if f.multires else " (single-resolution by default)"
        return f"{native}{'/'.join(map(str, PAPER_RESOLUTIONS))} × input/224{single}"

    return [
        [
            f.name,
            f"{f.mode} ({f.channels} ch)",
            f.native_size or "resized to the input",
            f.default_backbone,
            f.teacher,
            res(f),
        ]
        for f in FAMILIES.values()
    ]
