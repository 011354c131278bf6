"""TADE / SADE — test-agnostic LT recognition by test-time aggregation of diverse experts (Zhang et al. 2021).

Follows Vanint/SADE-AgnosticLT (read at cba11b8b): ``model/loss.py`` (DiverseExpertLoss),
``model/ldam_drw_resnets/expert_resnet_cifar.py``, ``model/fb_resnets/Expert_ResNeXt.py``,
``test_training_cifar.py`` / ``test_training_imagenet.py`` and ``configs/*.json``.

**Model**: a shared stem, then three experts, each with its own later stages, global pooling and a cosine
classifier × s = 30 (``NormedLinear``); the training output is the mean of the three experts' logits.
SADE shares stem + layer1 of CIFAR ResNet-32 (experts own layer2–3) and stem + layer1–2 of ResNeXt-50
(experts own layer3–4). Our splits:

- ``reactnet-a*``: the CANDLE authors' own TADE model (gistvision/SADE-AgnosticLT f0c042c
  ``model/Expert_ReActNet.py``): shared stem + blocks 1–7, each expert owns blocks 8–13, global average pooling
  and a plain ``nn.Linear`` head (1024 → C, no scale).
- ``cnn-digits``: shared first conv block, each expert owns conv blocks 2–3 (the CIFAR ResNet-32 analogue),
  with SADE's cosine head × s (``NormedLinear``).

Each expert is taken from a freshly created backbone, so the three start from independent initialisations.
SADE's ``reduce_dimension`` (expert widths × 3/4) is **not** applied, as the ReActNet authors did not.

**Loss** = sum of three CEs: E1 CE(z₁, y); E2 CE(z₂ + log π, y); E3 CE(z₃ + log π − τ·log π̄, y), with
π = n_c/N (+1e-9 inside the logs) and π̄ = π with its values reversed in rank order (the largest prior gets the
smallest value). Ties: the official sorts with ``torch.sort`` (not stable, ``model/loss.py:255-261``), so
which tied class gets which mirrored value depends on the device's sort; here classes are ranked by descending
prior with ties in label order, so a prior listed head-to-tail (as every LT build is) is exactly reversed —
π̄_c = π_{C−1−c}, SADE's intended "inversely long-tailed" prior. τ = 2 (CIFAR-100 and ImageNet-LT configs; Places/iNat use 1).

**Test-time self-supervised aggregation** (``prepare_predict``, transductive): w ∈ ℝ³ starts at 1/3, a =
softmax(w), ẑ = Σ_k a_k z_k (logits). On the **unlabelled test images** (labels are never read), two random
views per image; loss = −mean cos(softmax(ẑ(v₁)), softmax(ẑ(v₂))); model in eval mode and frozen, only w
trained (SGD with the training config's lr/momentum/wd/Nesterov: CIFAR lr 0.1, ImageNet 0.025, wd 5e-4), batch
128, shuffled, at most 5 epochs; after each epoch the official rounds a to 2 decimals and stops if any
a_k < 0.05 (so the effective threshold is a_k < 0.045; we do the same). Prediction: argmax ẑ. The learned
weights are returned as the test-time record (``records["tade"]``). ``test_time=false`` keeps a = (1/3, 1/3, 1/3).
Test-time views: CIFAR — crop, jitter(.4,.4,.4,.1) p .8, grayscale p .2, blur p .2, flip; ImageNet — resized
crop 0.2–1, the same jitter/grayscale, blur p .5, flip; digits — the digits augmentation, brightness/contrast
jitter p .8, 3×3 blur p .2; every view is normalised with the evaluator's mean/std
(``ltbench.transforms.mean_std``).

Recipes: ``official`` = CIFAR-100-LT ResNet-32 (200 epochs, batch 128, SGD Nesterov m0.9 lr 0.1 wd 5e-4,
5-epoch warm-up, ×0.1 at 160 and 180); ``official/large`` = ImageNet-LT (180 epochs, batch 64, lr 0.025,
cosine). ``binary`` = the authors' TADE on ReActNet-A (gistvision/SADE-AgnosticLT
``configs/config_small_dataset_reactnet.json``: Adam lr 0.01, no wd, batch 128, 180 epochs, cosine, τ 2);
``equal-budget`` = CANDLE's App. D budget (400 epochs, batch 256). The test-time step keeps SADE's own SGD
settings (it is part of the method, not of the backbone's training).
Training augmentation is the family's (SADE's CIFAR adds a 15° rotation; the digits one rotates 10°).
``*/digits``: Adam lr 0.005, cosine, batch 64, 30 epochs, like every digits recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from ltbench.data import ImageSplit
from ltbench.errors import LTBenchError
from ltbench.families import get_family
from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer
from ltbench.transforms import mean_std, train_transform

from .ldam import CosineClassifier
from .losses import log_prior
from .paco import TwoViews

NUM_EXPERTS = 3


def inverse_prior(prior: torch.Tensor) -> torch.Tensor:
    """π̄: the values of ``prior`` reversed in rank order. Classes are ranked by descending prior, ties in label
    order; the class of rank r gets the value of rank C−1−r (a head-to-tail prior is simply reversed)."""
    values, order = torch.sort(prior, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=order.device)
    return values[prior.shape[0] - 1 - rank]


def tade_loss(
    expert_logits: torch.Tensor, targets: torch.Tensor, counts: Sequence[int], tau: float = 2.0
) -> torch.Tensor:
    """SADE's DiverseExpertLoss on (B, 3, C) expert logits: CE(z₁) + CE(z₂ + log π) + CE(z₃ + log π − τ log π̄)."""
    lp = log_prior(counts, expert_logits.device, eps=1e-9)
    prior = torch.exp(log_prior(counts, expert_logits.device))
    lp_inv = torch.log(inverse_prior(prior) + 1e-9)
    z1, z2, z3 = expert_logits.unbind(1)
    return (
        F.cross_entropy(z1, targets)
        + F.cross_entropy(z2 + lp, targets)
        + F.cross_entropy(z3 + lp - tau * lp_inv, targets)
    )


def should_stop(weights: Sequence[float], threshold: float = 0.05) -> bool:
    """SADE's early stop: any aggregation weight, rounded to 2 decimals, below ``threshold``."""
    return any(round(float(a), 2) < threshold for a in weights)


def aggregation_loss(weights: torch.Tensor, z_view1: torch.Tensor, z_view2: torch.Tensor) -> torch.Tensor:
    """−mean_i cos(softmax(Σ_k a_k z_k(v₁)), softmax(Σ_k a_k z_k(v₂))), a = softmax(weights); z: (B, 3, C)."""
    a = torch.softmax(weights, dim=0)[None, :, None]
    p1 = torch.softmax((a * z_view1).sum(1), dim=1)
    p2 = torch.softmax((a * z_view2).sum(1), dim=1)
    return -F.cosine_similarity(p1, p2, dim=1, eps=1e-6).mean()


class TADEModel(nn.Module):
    """Shared stem → three experts (own later stages, pooling, head). ``forward`` = Σ_k a_k z_k with the
    aggregation weights ``a`` (a buffer: 1/3 each until the test-time step sets it)."""

    def __init__(self, stem: nn.Module, experts: Sequence[nn.Module], heads: Sequence[nn.Module]):
        super().__init__()
        self.stem = stem
        self.experts = nn.ModuleList(experts)
        self.heads = nn.ModuleList(heads)
        self.register_buffer("aggregation", torch.full((len(experts),), 1.0 / len(experts)))

    def expert_logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return torch.stack(
            [head(expert(h).mean(dim=(2, 3))) for expert, head in zip(self.experts, self.heads, strict=True)],
            dim=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.aggregation[None, :, None] * self.expert_logits(x)).sum(1)


#: ReActNet-A blocks shared by the three experts (Expert_ReActNet.py: ``input_list[:7]``)
REACTNET_SHARED_BLOCKS = 7


def split_backbone(model: nn.Module) -> tuple[nn.Module, nn.Module, str]:
    """(shared stem, one expert's later stages, head kind: ``linear`` | ``cosine``) for the backbones TADE knows."""
    from ltbench.backbones.cnn import SmallCNN
    from ltbench.backbones.reactnet import ReActNetA

    if isinstance(model, ReActNetA):
        k = REACTNET_SHARED_BLOCKS
        return nn.Sequential(model.stem, *model.blocks[:k]), nn.Sequential(*model.blocks[k:]), "linear"
    if isinstance(model, SmallCNN):
        return model.features[:3], model.features[3:], "cosine"
    raise LTBenchError(
        f"TADE has no shared-stem/expert split for {type(model).__name__}",
        "use reactnet-a, reactnet-a-tiny or cnn-digits (or add a split in baselines/tade.py)",
    )


def build_tade(task: Task, scale: float) -> TADEModel:
    backbone = task.create_model()
    width = int(backbone.num_features)
    stem, first, head = split_backbone(backbone)
    experts = [first] + [split_backbone(task.create_model())[1] for _ in range(NUM_EXPERTS - 1)]
    if head == "linear":
        heads = [nn.Linear(width, task.num_classes) for _ in experts]
    else:
        heads = [CosineClassifier(width, task.num_classes, scale) for _ in experts]
    return TADEModel(stem, experts, heads).to(task.device)


def test_time_view(family: str, size: int) -> v2.Compose:
    """SADE's test-time view (one of the two drawn per image), normalised as the evaluator normalises."""
    finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(*mean_std(family, size))]
    views = get_family(family).views
    if views == "grey":
        jitter = v2.RandomApply([v2.ColorJitter(0.4, 0.4)], p=0.8)
        blur = v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.2)
        return v2.Compose([*train_transform(family, size).transforms[:-2], jitter, blur, *finish])
    k = max(3, int(0.1 * size)) | 1
    if views == "cifar":
        crop = [v2.Resize(size, antialias=True), v2.RandomCrop(size, padding=size // 8, pad_if_needed=True)]
        p_blur = 0.2
    else:
        crop = [v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True)]
        p_blur = 0.5
    ops = [
        *crop,
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=p_blur),
        v2.RandomHorizontalFlip(),
    ]
    return v2.Compose([*ops, *finish])


class UnlabelledViews(Dataset):
    """Two views of each test image; the labels are never read."""

    def __init__(self, split: ImageSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.split[i][0]  # (2, C, H, W); the split's label is discarded unread


@dataclass
class TADEConfig(TrainConfig):
    tau: float = 2.0
    scale: float = 30.0
    test_time: bool = True
    tta_epochs: int = 5
    tta_batch_size: int = 128
    tta_lr: float = 0.1
    tta_momentum: float = 0.9
    tta_weight_decay: float = 5e-4
    tta_nesterov: bool = True
    tta_stop: float = 0.05


@METHODS.register("tade")
class TADE(Method):
    Config = TADEConfig
    stages = "1: shared stem + 3 experts (cosine heads s=30): CE, balanced CE, inverse-prior CE (τ=2)"
    sampler = "instance"
    test_time = "self-supervised aggregation of the 3 experts on the unlabelled test set"
    follows = "Zhang et al. 2021 (TADE/SADE), Vanint/SADE-AgnosticLT"

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        model = build_tade(task, cfg.scale)
        counts = task.class_counts

        def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return tade_loss(model.expert_logits(images), labels, counts, cfg.tau)

        train = task.train_set()
        add_stage(task.records, "tade", train, cfg, loss="CE + balanced CE + inverse-prior CE")
        Trainer(task, cfg, "tade").fit({"model": model}, model.parameters(), step, train)
        return model

    def prepare_predict(self, model: nn.Module, task: Task) -> dict:
        """Learn the aggregation weights on the unlabelled test images; returns the test-time record."""
        cfg = self.config
        record: dict = {"test_time": cfg.test_time}
        if cfg.test_time:
            weights, epochs = self.aggregate(model, task)
            model.aggregation.copy_(weights)
            record.update(epochs=epochs, stopped_early=epochs < cfg.tta_epochs)
        record["aggregation_weights"] = [round(float(a), 6) for a in model.aggregation]
        return {"tade": record}

    def aggregate(self, model: TADEModel, task: Task) -> tuple[torch.Tensor, int]:
        """Learn the 3 aggregation weights on two views of the unlabelled test images; (a, epochs run)."""
        cfg = self.config
        views = TwoViews(test_time_view(task.family, task.input_size or 224))
        data = UnlabelledViews(task.eval_set("test", transform=views))  # the distribution evaluated
        gen = torch.Generator().manual_seed(task.seed)
        loader = DataLoader(data, batch_size=cfg.tta_batch_size, shuffle=True, generator=gen)
        was_training = model.training
        model.eval()
        try:
            return learn_aggregation(model.expert_logits, loader, cfg, task.device)
        finally:
            model.train(was_training)


def learn_aggregation(
    expert_logits: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    cfg: TADEConfig,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, int]:
    """SADE's test-time loop: w (init 1/3) trained by SGD on ``aggregation_loss`` over ``batches`` of
    two-view images (B, 2, C, H, W), at most ``cfg.tta_epochs`` passes, stopping after the first pass whose
    rounded softmax(w) has a weight below ``cfg.tta_stop``. Returns (softmax(w), passes run)."""
    w = nn.Parameter(torch.full((NUM_EXPERTS,), 1.0 / NUM_EXPERTS, device=device))
    opt = torch.optim.SGD(
        [w],
        lr=cfg.tta_lr,
        momentum=cfg.tta_momentum,
        weight_decay=cfg.tta_weight_decay,
        nesterov=cfg.tta_nesterov,
    )
    epochs = 0
    for _ in range(cfg.tta_epochs):
        for images in batches:
            images = images.to(device)
            with torch.no_grad():  # the model is frozen: only w gets a gradient
                z1, z2 = expert_logits(images[:, 0]), expert_logits(images[:, 1])
            with torch.enable_grad():  # the evaluator calls prepare_predict under no_grad
                loss = aggregation_loss(w, z1, z2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        epochs += 1
        if should_stop(torch.softmax(w.detach(), 0).tolist(), cfg.tta_stop):
            break
    return torch.softmax(w.detach(), 0), epochs
