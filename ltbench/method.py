"""The method interface: a ``Task`` in, a fitted model out, logits from ``predict``.

A method is a short composition of stages over the shared :class:`~ltbench.trainer.Trainer`. Test-time steps
(τ-norm's re-weighting, TADE's aggregation) live in ``predict`` or in ``prepare_predict`` (which sees the
unlabelled test images first, for transductive methods), so the evaluator stays method-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ltbench.data import ImageSplit, SplitInfo
from ltbench.transforms import eval_transform, in_chans, train_transform

#: The CANDLE paper's protocol for binary backbones (App. D/G): Adam, no weight decay, cosine from lr 0.01,
#: 400 epochs of batch 256. Every method's ``binary`` recipe starts from it.
BINARY_PROTOCOL: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "milestones": (),
    "epochs": 400,
    "batch_size": 256,
}
#: The short digits recipe (Adam, cosine, 30 epochs of batch 64) that the ``*/digits`` recipes start from.
DIGITS_RECIPE: dict[str, Any] = {**BINARY_PROTOCOL, "lr": 0.005, "epochs": 30, "batch_size": 64}


@dataclass
class TrainConfig:
    """Fields every method shares. Subclasses add their own; defaults are the method's official recipe."""

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | multistep | linear | constant
    warmup_epochs: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    sampler: str = "instance"  # instance | class_aware | sqrt
    augment: bool = True
    amp: bool = False
    grad_clip: float | None = None
    log_every: int = 0
    schedule_by: str = "step"  # step | epoch (lr changes once per epoch, as ReActNet's LambdaLR)
    weight_decay_rule: str = "all"  # all | conv (ReActNet: 4-d or 'conv' params only) | no_norm_bias
    ema: float = 0.0  # EMA decay per step (0 = off); the EMA weights replace the model's at the end
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA only)
    tensorboard: bool = False  # scalars under <results>/.runs/.../tensorboard
    weights: str | None = None  # backbone weights: a torchvision/timm weights name or a local file


@dataclass
class Task:
    """Everything a method needs: the split, class counts, the backbone factory, device, seed, run dir."""

    info: SplitInfo
    backbone: str
    device: torch.device
    seed: int = 0
    run_dir: Path = Path("results/.runs/tmp")
    resume: bool = False
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)  # method extras stored in the result
    test_indices: list[int] | None = None  # evaluate on these test rows only (a test-agnostic distribution)

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def class_counts(self) -> list[int]:
        return self.info.counts("train")

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def binary(self) -> bool:
        from ltbench.backbones import is_binary

        return is_binary(self.backbone)

    @property
    def input_size(self) -> int | None:
        from ltbench.registry import BACKBONES

        return BACKBONES.entry(self.backbone).meta.get("input_size")

    def create_model(self, **kwargs: Any) -> nn.Module:
        from ltbench.backbones import create_backbone

        kw = {**self.backbone_kwargs, **kwargs}
        return create_backbone(self.backbone, self.num_classes, in_chans(self.family), **kw).to(self.device)

    def train_set(self, augment: bool = True, split: str = "train") -> ImageSplit:
        tf = train_transform(self.family, self.input_size, augment)
        return ImageSplit(self.info, split, tf, mode=_mode(self.family))

    def eval_set(self, split: str = "test", transform=None) -> ImageSplit:
        """``split`` with the evaluation transform (or ``transform``), restricted to ``test_indices``."""
        tf = transform if transform is not None else eval_transform(self.family, self.input_size)
        ds = ImageSplit(self.info, split, tf, mode=_mode(self.family))
        if split == "test" and self.test_indices is not None:
            from ltbench.test_dists import SubsetSplit

            return SubsetSplit(ds, self.test_indices)
        return ds


def _mode(family: str) -> str:
    return "L" if family == "digits" else "RGB"


class Method:
    """Base class. Subclasses set ``Config`` and ``recipes`` and implement ``fit``.

    ``recipes`` maps ``"binary"``/``"official"`` (backbone kind) and ``"<kind>/<family>"`` to field
    overrides of ``Config`` (applied in that order). Class attributes ``stages``, ``sampler``, ``test_time``
    and ``follows`` describe the method for ``ltbench methods``.
    """

    Config: ClassVar[type[TrainConfig]] = TrainConfig
    recipes: ClassVar[dict[str, dict[str, Any]]] = {}
    stages: ClassVar[str] = ""
    sampler: ClassVar[str] = "instance"
    test_time: ClassVar[str] = "raw logits"
    follows: ClassVar[str] = ""

    def __init__(self, config: TrainConfig):
        self.config = config

    @classmethod
    def recipe(cls, binary: bool, family: str) -> dict[str, Any]:
        kind = "binary" if binary else "official"
        return {**cls.recipes.get(kind, {}), **cls.recipes.get(f"{kind}/{family}", {})}

    def fit(self, task: Task) -> nn.Module:
        raise NotImplementedError

    def teacher(self, task: Task) -> tuple[nn.Module, Any]:
        """This method as another method's teacher: (model, no-grad logits of the student's input batch).
        Default: ``fit``, then ``predict`` (no transductive step). A method whose teacher is one of its parts
        overrides it (CANDLE: the calibrated teacher). Called through :func:`ltbench.method_teacher.fit_teacher`."""
        model = self.fit(task)
        return model, lambda x: self.predict(model, x)

    def prepare_predict(self, model: nn.Module, task: Task) -> dict[str, Any]:
        """Hook that runs once before evaluation (transductive test-time steps); returns its records."""
        return {}

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return model(images)
