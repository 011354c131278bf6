"""DiVE — Distilling Virtual Examples (He et al., ICCV 2021) and DiVE* (the same with CANDLE's teacher).

No official code exists. Sources: the paper (Eq. for the student loss, power normalisation), the
reimplementation in zhangyongshun/BagofTricks-LT (``lib/loss/loss_impl/kld_loss.py`` DiVEKLD,
``configs/cao_cifar/DiVE/*/{teacher,student}.yaml``, ``lib/core/combiner.py`` ``dive``) and CANDLE's protocol
(seed paper §4.2 and App. E).

**Student loss** = (1 − α)·BSCE(s, y) + α·τ²·KL(p̃_T ‖ softmax(s/τ)) with p̃_T = normalise(softmax(t/τ)^p)
(power normalisation after the tempered softmax; p = 0.5 ≈ doubling τ on the teacher side), teacher detached,
KL batch-mean; BSCE = CE(s + log π, y). α = 0.5, p = 0.5, τ = 3 (the paper's CIFAR value and BagofTricks'
default; BagofTricks' CIFAR student configs use τ = 2 — ``--set temperature=2``). The teacher sees the very
same augmented batch as the student, in eval mode. Inference: the student's raw logits.

**Teacher** (``teacher=``). ``balms`` and ``candle`` are other registered methods, trained through
:func:`ltbench.method_teacher.fit_teacher` with their own recipe for the same backbone and family; the
student's ``--set``s configure the student only, ``teacher_set`` (``KEY=VALUE``, …) the teacher's method:
- ``balms`` (default for ``dive``): CANDLE's protocol — "the teacher network is trained by existing well
  performing LT methods such as BALMS", i.e. BALMS's own model in the same (binary) setting; its logits are
  BALMS's ``predict``.
- ``bsce``: the DiVE paper's own teacher — the same backbone trained end to end with BSCE, with the student's
  recipe (BagofTricks' ``teacher.yaml`` = ``student.yaml`` with the loss swapped); a stage of DiVE itself, so
  ``teacher_set`` does not apply.
- ``candle`` (default for ``dive_star``): CANDLE's calibrated FP teacher (``Candle.teacher``: calibration
  only, no student), e.g. ``--set teacher_set=calib_epochs=5``.
The teacher's test accuracy is stored in the result (``records["dive_teacher"]``) for diagnosis only — the seed
paper attributes DiVE's collapse on small sets to a weak BALMS teacher (≈26.65 % mean).

Recipes: ``official`` = BagofTricks' CIFAR ResNet-32 (200 epochs, batch 128, SGD m0.9 lr 0.1 wd 2e-4, 5-epoch
warm-up, lr ×0.01 at epoch 120 and again at 160, instance sampling); ``binary`` = that
schedule under Adam, lr 0.01, no weight decay; ``equal-budget`` = CANDLE's 400 epochs of batch 256.
``binary/digits`` (the demo on reactnet-a-tiny) trains the student at lr 0.002; ``dive``'s BALMS teacher is
BALMS's own digits model (before 7 December a shortened one, 15 + 5 epochs). Values and sources:
``docs/methods.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.config import parse_sets, to_dict
from ltbench.errors import LTBenchError
from ltbench.method import Method, Task, TrainConfig
from ltbench.method_teacher import FittedTeacher, fit_teacher
from ltbench.registry import METHODS
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer

from .losses import balanced_softmax_loss

TEACHERS = ("balms", "bsce", "candle")


def power_normalized_target(teacher_logits: torch.Tensor, temperature: float, power: float) -> torch.Tensor:
    """p̃_T = softmax(t/τ)^p / Σ_c softmax(t/τ)_c^p (detached)."""
    p = F.softmax(teacher_logits.detach() / temperature, dim=1) ** power
    return p / p.sum(dim=1, keepdim=True)


def dive_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    counts: Sequence[int],
    temperature: float = 3.0,
    power: float = 0.5,
    alpha: float = 0.5,
) -> torch.Tensor:
    """(1 − α)·BSCE(s, y) + α·τ²·KL(p̃_T ‖ softmax(s/τ)), KL averaged over the batch."""
    target = power_normalized_target(teacher_logits, temperature, power)
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    kl = F.kl_div(log_ps, target, reduction="batchmean")
    return (1 - alpha) * balanced_softmax_loss(student_logits, targets, counts) + alpha * temperature**2 * kl


@dataclass
class DiVEConfig(TrainConfig):
    teacher: Literal["balms", "bsce", "candle"] = "balms"
    temperature: float = 3.0
    power: float = 0.5
    alpha: float = 0.5
    teacher_set: tuple[str, ...] = ()  # KEY=VALUE overrides of the teacher method's config (balms, candle)


@dataclass
class DiVEStarConfig(DiVEConfig):
    teacher: Literal["balms", "bsce", "candle"] = "candle"


@METHODS.register("dive")
class DiVE(Method):
    Config = DiVEConfig
    stages = (
        "1: BSCE teacher (BALMS's model); 2: student (1−α)·BSCE + α·τ²·KL to the power-normalised teacher"
    )
    sampler = "instance"
    test_time = "raw logits"
    follows = "He et al. 2021 (no official code); BagofTricks-LT DiVEKLD; CANDLE App. E (BALMS teacher)"

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        teacher_logits, record = self.make_teacher(task)
        task.records["dive_teacher"] = record
        student = task.create_model()
        counts = task.class_counts

        def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                t = teacher_logits(images)
            s = student(images)
            return dive_loss(s, t, labels, counts, cfg.temperature, cfg.power, cfg.alpha)

        train = task.train_set()
        add_stage(
            task.records, "dive_student", train, cfg, loss="(1−α)·BSCE + α·τ²·KL(power-normalised teacher)"
        )
        Trainer(task, cfg, "dive_student").fit({"model": student}, student.parameters(), step, train)
        return student

    def make_teacher(self, task: Task):
        """(no-grad logits function of the student's batch, record for the result)."""
        cfg = self.config
        if cfg.teacher not in TEACHERS:
            raise LTBenchError(
                f"unknown DiVE teacher {cfg.teacher!r}", f"choose one of {', '.join(TEACHERS)}"
            )
        record: dict = {"source": cfg.teacher}
        if cfg.teacher == "bsce":
            sub = dataclasses.replace(task, run_dir=task.run_dir / "teacher", records={})
            model = self._bsce_teacher(sub)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            teacher = FittedTeacher("bsce", model, model, to_dict(cfg), sub.records)
        else:
            if cfg.teacher not in METHODS:
                raise LTBenchError(
                    f"DiVE's teacher={cfg.teacher} needs the `{cfg.teacher}` method, which is not registered",
                    "use --set teacher=bsce (DiVE's own BSCE teacher)",
                )
            teacher = fit_teacher(cfg.teacher, task, parse_sets(cfg.teacher_set))
            record["config"] = teacher.config
        record.update(teacher.diagnosis(task))
        if teacher.records:
            record["records"] = teacher.records
        return teacher.forward, record

    def _bsce_teacher(self, sub: Task) -> nn.Module:
        model = sub.create_model()
        counts = sub.class_counts
        train = sub.train_set()
        add_stage(sub.records, "dive_teacher", train, self.config, loss="BSCE")
        Trainer(sub, self.config, "dive_teacher").fit(
            {"model": model},
            model.parameters(),
            lambda x, y: balanced_softmax_loss(model(x), y, counts),
            train,
        )
        return model


@METHODS.register("dive_star")
class DiVEStar(DiVE):
    Config = DiVEStarConfig
    stages = (
        "1: CANDLE's calibrated FP teacher; 2: student (1−α)·BSCE + α·τ²·KL to the power-normalised teacher"
    )
    follows = "He et al. 2021 with CANDLE's calibrated teacher (DiVE*, seed paper Tab. 1–2)"
