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

**Teacher** (``teacher=``):
- ``balms`` (default for ``dive``): CANDLE's protocol — "the teacher network is trained by existing well
  performing LT methods such as BALMS", i.e. BALMS's own model in the same (binary) setting, trained first
  with BALMS's resolved recipe (``teacher_set`` overrides its fields, e.g. ``epochs=5``); its logits are
  BALMS's ``predict``.
- ``bsce``: the DiVE paper's own teacher — the same backbone trained end to end with BSCE, with the student's
  recipe (BagofTricks' ``teacher.yaml`` = ``student.yaml`` with the loss swapped).
- ``candle`` (default for ``dive_star``): CANDLE's calibrated teacher,
  ``ltbench.candle.calibration.fit_calibrated_teacher(task)`` (a frozen FP teacher; ``forward(x)`` → logits
  on the student's input).
The teacher's test accuracy is stored in the result (``records["dive_teacher"]``) for diagnosis — the seed
paper attributes DiVE's collapse on small sets to a weak BALMS teacher (≈26.65 % mean).

Recipes: ``official`` = BagofTricks' CIFAR ResNet-32 (200 epochs, batch 128, SGD m0.9 lr 0.1 wd 2e-4, 5-epoch
warm-up, lr ×0.01 at epoch 120 and again at 160, instance sampling); ``binary`` = CANDLE's protocol (Adam, no
weight decay, cosine from lr 0.01, 400 epochs, batch 256; App. D/G). ``*/digits``: Adam lr 0.005, cosine,
batch 64, 30 epochs; ``binary/digits`` (the demo on reactnet-a-tiny) trains the student 15 epochs and the
BALMS teacher 15 + 5 epochs (``teacher_set``) so that both fit in about CE's time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.errors import LTBenchError
from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
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
    teacher_set: tuple[str, ...] = ()  # KEY=VALUE overrides of the BALMS teacher's config


@dataclass
class DiVEStarConfig(DiVEConfig):
    teacher: str = "candle"


class _Predictor:
    """A minimal method-like wrapper so ``ltbench.evaluate.evaluate`` can score a bare teacher."""

    def __init__(self, forward):
        self.forward = forward

    def prepare_predict(self, model: nn.Module, task: Task) -> None:
        pass

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return self.forward(images)


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

        Trainer(task, cfg, "dive_student").fit(
            {"model": student}, student.parameters(), step, task.train_set()
        )
        return student

    def make_teacher(self, task: Task):
        """(no-grad logits function of the student's batch, record for the result)."""
        from ltbench.evaluate import evaluate

        cfg = self.config
        if cfg.teacher not in TEACHERS:
            raise LTBenchError(
                f"unknown DiVE teacher {cfg.teacher!r}", f"choose one of {', '.join(TEACHERS)}"
            )
        sub = dataclasses.replace(task, run_dir=task.run_dir / "teacher", records={})
        record: dict = {"source": cfg.teacher}
        if cfg.teacher == "balms":
            model, method = self._balms_teacher(sub, record)
            forward = lambda x: method.predict(model, x)  # noqa: E731
        elif cfg.teacher == "bsce":
            model = self._bsce_teacher(sub)
            forward = model
        else:
            model = self._candle_teacher(sub)
            forward = model
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        metrics = evaluate(_Predictor(forward), model, sub)
        record.update({k: metrics[k] for k in ("avg", "head", "medium", "tail")})
        if sub.records:
            record["records"] = sub.records
        return forward, record

    def _balms_teacher(self, sub: Task, record: dict):
        from ltbench.config import parse_sets
        from ltbench.run import resolve_config

        if "balms" not in METHODS:
            raise LTBenchError(
                "DiVE's teacher=balms needs the `balms` method, which is not registered",
                "use --set teacher=bsce (DiVE's own BSCE teacher) or install the BALMS baseline",
            )
        balms = METHODS.get("balms")
        tcfg = resolve_config(balms, sub.binary, sub.family, sets=parse_sets(self.config.teacher_set))
        record["config"] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(tcfg).items()
        }
        method = balms(tcfg)
        return method.fit(sub), method

    def _bsce_teacher(self, sub: Task) -> nn.Module:
        model = sub.create_model()
        counts = sub.class_counts
        Trainer(sub, self.config, "dive_teacher").fit(
            {"model": model},
            model.parameters(),
            lambda x, y: balanced_softmax_loss(model(x), y, counts),
            sub.train_set(),
        )
        return model

    def _candle_teacher(self, sub: Task) -> nn.Module:
        try:
            from ltbench.candle.calibration import fit_calibrated_teacher
        except ImportError as e:
            raise LTBenchError(
                "DiVE*'s teacher=candle needs ltbench.candle.calibration.fit_calibrated_teacher",
                f"it failed to import ({e}); use --set teacher=balms or teacher=bsce",
            ) from e
        return fit_calibrated_teacher(sub)


@METHODS.register("dive_star")
class DiVEStar(DiVE):
    Config = DiVEStarConfig
    stages = (
        "1: CANDLE's calibrated FP teacher; 2: student (1−α)·BSCE + α·τ²·KL to the power-normalised teacher"
    )
    follows = "He et al. 2021 with CANDLE's calibrated teacher (DiVE*, seed paper Tab. 1–2)"
