"""The method interface: a ``Task`` in, a fitted model out, logits from ``predict``.

A method is a short composition of stages over the shared :class:`~ltbench.trainer.Trainer`. Test-time steps
(τ-norm's re-weighting, TADE's aggregation) live in ``predict`` or in ``prepare_predict`` (which sees the
unlabelled test images first, for transductive methods), so the evaluator stays method-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ltbench import recipes
from ltbench.data import ImageSplit, SplitInfo
from ltbench.families import Family, get_family

Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["cosine", "multistep", "linear", "constant"]
SamplerName = Literal["instance", "class_aware", "sqrt"]
BNPolicy = Literal["train", "eval"]


@dataclass
class TrainConfig:
    """Fields every method shares. Subclasses add their own; recipes (:mod:`ltbench.recipes`) set values.

    ``ROW_FIELD`` names the field whose non-default value files a result under its own leaderboard row
    (``method[value]``, e.g. CANDLE's ablation ``variant``); ``None``: one row per method."""

    ROW_FIELD: ClassVar[str | None] = None

    epochs: int = 30
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: Schedule = "cosine"
    warmup_epochs: float = 0.0
    warmup_start: float = 0.0  # lr factor the linear warm-up starts from (BALMS: 0.05 → 0.1, i.e. 0.5)
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    sampler: SamplerName = "instance"
    augment: bool = True
    amp: bool = False
    grad_clip: float | None = None
    log_every: int = 0
    #: a stage checkpoints after an epoch once this many seconds passed since its last checkpoint, and always after
    #: its last epoch (0: after every epoch); ``--resume`` restarts from it, so a kill loses at most this much
    checkpoint_every_s: float = 60.0
    #: Adam / AdamW as torch's fused kernel (one pass over all parameters; CPU and CUDA): the same update as the
    #: per-tensor loop up to rounding, in a fraction of its time (``O1`` in ``benchmarks/bench_train.py``)
    fused_optimizer: bool = True
    schedule_by: Literal["step", "epoch"] = "step"  # epoch: lr changes once per epoch (ReActNet's LambdaLR)
    weight_decay_rule: Literal["all", "conv", "no_norm_bias"] = "all"  # conv: ReActNet (4-d or 'conv' only)
    ema: float = 0.0  # EMA decay per step (0 = off); the EMA weights replace the model's at the end
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA only)
    tensorboard: bool = False  # scalars under <results>/.runs/.../tensorboard
    weights: str | None = None  # backbone weights: a torchvision/timm weights name or a local file
    backbone_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the backbone factory


@dataclass
class Task:
    """Everything a method needs: the split, class counts, the backbone factory, device, seed, run dir."""

    info: SplitInfo
    backbone: str
    device: torch.device
    seed: int = 0
    run_dir: Path = Path("results/.runs/tmp")
    resume: bool = False
    stage_store: Path | None = None  # finished shared stages (:mod:`ltbench.stage_store`); None: never shared
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)  # method extras stored in the result
    test_indices: list[int] | None = None  # evaluate on these rows only (a test-agnostic distribution) …
    test_indices_split: str = "test"  # … of this split (Places-LT's SADE lists index ``oltr_test``)

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
    def image_family(self) -> Family:
        """The :class:`~ltbench.families.Family` of the split: transforms, mode, channels, teacher."""
        return get_family(self.info.family)

    @property
    def binary(self) -> bool:
        from ltbench.backbones import is_binary

        return is_binary(self.backbone)

    @property
    def input_size(self) -> int | None:
        from ltbench.registry import BACKBONES

        return BACKBONES.entry(self.backbone).meta.get("input_size")

    @property
    def image_mode(self) -> str:
        return self.image_family.mode

    def mean_std(self):
        """The normalisation every stage, test-time step and the evaluator use for this task."""
        return self.image_family.mean_std(self.input_size)

    def train_transform(self, augment: bool = True, auto_augment: str | None = None, cutout: int = 0):
        return self.image_family.train_transform(self.input_size, augment, auto_augment, cutout)

    def eval_transform(self):
        return self.image_family.eval_transform(self.input_size)

    def create_model(self, **kwargs: Any) -> nn.Module:
        from ltbench.backbones import create_backbone

        kw = {**self.backbone_kwargs, **kwargs}
        channels = self.image_family.channels
        return create_backbone(self.backbone, self.num_classes, channels, **kw).to(self.device)

    def train_set(self, augment: bool = True, split: str = "train") -> ImageSplit:
        return ImageSplit(self.info, split, self.train_transform(augment), mode=self.image_mode)

    def eval_set(self, split: str = "test", transform=None) -> ImageSplit:
        """``split`` with the evaluation transform (or ``transform``); ``test`` under a test-agnostic
        distribution is its ``test_indices`` rows of ``test_indices_split``."""
        tf = transform if transform is not None else self.eval_transform()
        if split == "test" and self.test_indices is not None:
            from ltbench.test_dists import SubsetSplit

            ds = ImageSplit(self.info, self.test_indices_split, tf, mode=self.image_mode)
            return SubsetSplit(ds, self.test_indices)
        return ImageSplit(self.info, split, tf, mode=self.image_mode)

    def image_split(self, split: str, transform: Any) -> ImageSplit:
        """Split ``split`` of the task's data under any ``transform`` (e.g. a method's two-view transform)."""
        return ImageSplit(self.info, split, transform, mode=self.image_mode)


@dataclass
class Fitted:
    """A fitted method: the trained model and what its fit recorded."""

    model: nn.Module
    records: dict[str, Any]


class Method:
    """Base class. Subclasses set ``Config`` and implement ``fit``; their recipes live in
    :mod:`ltbench.recipes` under the registry name. Class attributes ``stages``, ``sampler``, ``test_time``
    and ``follows`` describe the method for ``ltbench methods``.
    """

    Config: ClassVar[type[TrainConfig]] = TrainConfig
    stages: ClassVar[str] = ""
    sampler: ClassVar[str] = "instance"
    test_time: ClassVar[str] = "raw logits"
    follows: ClassVar[str] = ""

    def __init__(self, config: TrainConfig):
        self.config = config

    @classmethod
    def recipe(cls, binary: bool, family: str) -> dict[str, Any]:
        """The field overrides of this method's default recipe for a backbone kind and family (the layers of
        :func:`ltbench.recipes.recipe_layers`, merged); ``ltbench.config.resolve_config`` applies them."""
        from ltbench.registry import METHODS

        name = next(e.name for e in METHODS.entries() if e.obj is cls)
        layers = recipes.recipe_layers(name, cls.Config, recipes.default_recipe(binary), family, binary)
        return {k: v for _, layer in layers for k, v in layer.items()}

    def fit(self, task: Task) -> nn.Module:
        """Train on ``task``; what the fit did (stages, selections, method extras) goes to ``task.records``,
        the record sink :meth:`fit_with_records` gives each fit afresh."""
        raise NotImplementedError

    def fit_with_records(self, task: Task) -> Fitted:
        """``fit`` on a fresh record sink: the model with the records of this fit alone; ``ltbench run`` reads
        these, never a task's shared state (:func:`ltbench.method_teacher.fit_teacher` gives each teacher a sink
        of its own the same way)."""
        task.records = {}
        model = self.fit(task)
        return Fitted(model, task.records)

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
