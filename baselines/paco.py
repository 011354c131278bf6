"""PaCo — Parametric Contrastive Learning (Cui et al., ICCV 2021), single stage, end to end.

Follows dvlab-research/Parametric-Contrastive-Learning ``PaCo/LT`` (read at fe56535e): ``losses.py``
(PaCoLoss), ``moco/builder.py`` (MoCo), ``paco_cifar.py`` / ``paco_lt.py`` and ``sh/*.sh``.

Model (MoCo v2 style): the query encoder is the backbone; a 2-layer projector (Linear F→F, BN, ReLU,
Linear F→dim) on its pooled feature gives the normalised query q. A momentum copy of backbone + projector
(m = 0.999, updated before each key forward; the copy includes the classifier, as the official keeps a
momentum ``linear_k``, unused) gives the normalised key k. A queue holds the last K keys and their labels.
The *parametric class centres* are the backbone's own linear classifier applied to the **un-normalised**
pooled query feature (the official hooks the avg-pool output), so at test time the model is just the
backbone: **raw linear logits, no prior subtraction** (the log prior lives only inside the training loss).

Loss per query i (only the B queries are anchors; contrast set = C centres ∪ {q, k, queue}):
logits = [z_i + log(π + 1e-9)  (centres, no temperature) ; q_i·v / T  (samples)];
positive weights β on centre y_i and α on every sample of class y_i except q_i itself (its own key k_i
counts); the softmax denominator weighs centres 1, samples γ, q_i itself 0;
L_i = −Σ_p w_p log P_p / Σ_p w_p; loss = mean_i L_i (the official T/base_T factor is 1).

Hyper-parameters (``sh/``): CIFAR-100-LT ResNet-32 (every IR): α 0.01, β γ 1, T 0.05, K 1024, dim 32, SGD lr
0.05 m0.9 wd 5e-4, batch 128, 400 epochs, warm-up lr·(e+1)/10 for e ≤ 10, ×0.1 for e > 320, ×0.01 for e > 360
(``official``, also used for the ``small`` family). ImageNet-LT R50: α 0.05, T 0.2, K 8192, dim 128, lr 0.02,
cosine after a 10-epoch warm-up, 400 epochs (``official/large``; iNat's wd 1e-4 is not separated).
``binary``: the family's ``official`` schedule and α/T/K/dim under Adam, lr 0.01, no weight decay
(``equal-budget``: CANDLE's 400 epochs of batch 256). ``*/digits`` (30 epochs, Adam lr 0.005, batch 64): ImageNet-LT's α 0.05 and T 0.2 with
K 256 and dim 32 — at T 0.05 the sample logits (up to 1/T = 20) swamp the centre logits, which a 30-epoch run
cannot outgrow (digits-LT10 avg 78 % at T 0.05 against 96 % at T 0.2; 92 % at T 0.05 with 60 epochs).
``binary/digits`` runs 20 epochs (two encoders on reactnet-a-tiny: about CE's 30-epoch time).

Views (``paco_cifar.py`` ``augmentation_regular`` / ``augmentation_sim_cifar``): query = the family's training
augmentation — on ``small`` sets RandomCrop(size, pad size/8) + flip (RandomCrop(32, 4) at 32 px) + AutoAugment
(CIFAR-10 policy) + Cutout(size/2) before normalisation; on ``large`` sets random resized crop + flip +
RandAugment(n=2, m=10); key = SimCLR/MoCo-v2 (random resized crop 0.2–1, colour jitter (.4,.4,.4,.1) p .8,
grayscale p .2, Gaussian blur σ∈[.1, 2] p .5, flip). Digits (8×8, grey): query = the digits augmentation; key =
resized crop 0.2–1 + brightness/contrast jitter p .8 + blur (3×3) p .5. Both views are normalised with the
evaluator's mean/std (``ltbench.transforms.mean_std``: CIFAR statistics at ≤ 64 px, as the official).

Deliberate differences from the official code:
- Single process: no DDP and therefore **no shuffle-BN** — the key encoder's BN normalises the key batch
  with its own statistics. Shuffle-BN exists to stop BN leaking which key matches which query in instance
  discrimination; PaCo's positives are class-level (and include the supervised centre term), so we accept the
  difference rather than emulate multi-GPU statistics.
- The queue starts as random keys normalised per key (the official normalises along the wrong axis, PC#20;
  either way it is overwritten after K/B steps) with random labels, as the official.
- Enqueueing wraps around the queue end, so K need not be a multiple of the batch size (a short last batch
  is allowed); the official asserts K % B == 0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ltbench.data import ImageSplit
from ltbench.errors import LTBenchError
from ltbench.families import get_family
from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer
from ltbench.transforms import mean_std, train_transform

from .losses import log_prior


def paco_loss(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    queue_labels: torch.Tensor,
    labels: torch.Tensor,
    centre_logits: torch.Tensor,
    log_pi: torch.Tensor,
    alpha: float,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 0.05,
) -> torch.Tensor:
    """PaCo's loss for B queries ``q`` (normalised, B×d), their keys ``k`` (B×d), the queue (K×d) and its
    labels, the centre logits z (B×C, the linear head on the un-normalised feature) and log π (C)."""
    b, c = centre_logits.shape
    samples = torch.cat([q, k, queue], dim=0)
    sample_labels = torch.cat([labels, labels, queue_labels], dim=0)
    logits = torch.cat([centre_logits + log_pi, q @ samples.T / temperature], dim=1)
    not_self = torch.ones(b, samples.shape[0], device=q.device)
    not_self[torch.arange(b), torch.arange(b)] = 0.0
    same = (labels[:, None] == sample_labels[None, :]).float() * not_self
    pos = torch.cat([beta * F.one_hot(labels, c).float(), alpha * same], dim=1)
    denom_w = torch.cat([torch.ones(b, c, device=q.device), gamma * not_self], dim=1)
    log_denom = torch.logsumexp(logits + torch.log(denom_w), dim=1, keepdim=True)  # log 0 = −inf drops q_i
    log_prob = logits - log_denom
    return (-(pos * log_prob).sum(1) / pos.sum(1)).mean()


class PaCoModel(nn.Module):
    """Query backbone + projector, their momentum copies, and the key queue."""

    def __init__(self, encoder: nn.Module, num_classes: int, dim: int, queue_size: int, momentum: float):
        super().__init__()
        f = encoder.num_features
        self.encoder_q = encoder
        self.proj_q = nn.Sequential(
            nn.Linear(f, f), nn.BatchNorm1d(f), nn.ReLU(inplace=True), nn.Linear(f, dim)
        )
        self.encoder_k = copy.deepcopy(self.encoder_q)
        self.proj_k = copy.deepcopy(self.proj_q)
        for p in [*self.encoder_k.parameters(), *self.proj_k.parameters()]:
            p.requires_grad_(False)
        self.m = momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_labels", torch.randint(0, num_classes, (queue_size,)))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def query_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder_q.parameters(), *self.proj_q.parameters()]

    @torch.no_grad()
    def momentum_update(self) -> None:
        pairs = zip(
            [*self.encoder_q.parameters(), *self.proj_q.parameters()],
            [*self.encoder_k.parameters(), *self.proj_k.parameters()],
            strict=True,
        )
        for pq, pk in pairs:
            pk.mul_(self.m).add_(pq.detach(), alpha=1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        n = self.queue.shape[0]
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % n
        self.queue[idx] = keys
        self.queue_labels[idx] = labels
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % n)

    def forward_train(self, x_q: torch.Tensor, x_k: torch.Tensor):
        """(q, k, centre logits) for a batch of query and key views."""
        feat = self.encoder_q.forward_features(x_q)
        centre_logits = self.encoder_q.classifier(feat)
        q = F.normalize(self.proj_q(feat), dim=1)
        with torch.no_grad():
            self.momentum_update()
            k = F.normalize(self.proj_k(self.encoder_k.forward_features(x_k)), dim=1)
        return q, k, centre_logits


class TwoViews:
    """Transform a uint8 CHW image twice: ``stack([first(img), second(img)])`` (2, C, H, W)."""

    def __init__(self, first: Callable, second: Callable | None = None):
        self.first, self.second = first, second or first

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.first(img), self.second(img)])


def image_mode(family: str) -> str:
    return get_family(family).mode


def _blur_kernel(size: int) -> int:
    k = max(3, int(0.1 * size))
    return k if k % 2 else k + 1


def _finish(family: str, size: int) -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(*mean_std(family, size))]


def key_transform(family: str, size: int) -> v2.Compose:
    """SimCLR / MoCo-v2 view (PaCo's key augmentation), at ``size``."""
    blur = v2.RandomApply([v2.GaussianBlur(_blur_kernel(size), sigma=(0.1, 2.0))], p=0.5)
    if get_family(family).views == "grey":
        jitter = v2.RandomApply([v2.ColorJitter(0.4, 0.4)], p=0.8)
        ops = [v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), jitter, blur]
    else:
        ops = [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            blur,
            v2.RandomHorizontalFlip(),
        ]
    return v2.Compose([*ops, *_finish(family, size)])


def query_transform(family: str, size: int) -> v2.Compose:
    """PaCo's query view: the family's crop/flip plus AutoAugment+Cutout (small) or RandAugment (large)."""
    views = get_family(family).views
    if views == "grey":
        return train_transform(family, size)
    if views == "cifar":
        return train_transform(family, size, auto_augment="cifar10", cutout=size // 2)
    ops = [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
    return v2.Compose([*ops, v2.RandAugment(num_ops=2, magnitude=10), *_finish(family, size)])


@dataclass
class PaCoConfig(TrainConfig):
    alpha: float = 0.01
    beta: float = 1.0
    gamma: float = 1.0
    temperature: float = 0.05
    queue_size: int = 1024
    moco_dim: int = 32
    key_momentum: float = 0.999


@METHODS.register("paco")
class PaCo(Method):
    Config = PaCoConfig
    stages = "1: PaCo loss (centres = linear head + log π, MoCo queue and momentum key encoder)"
    sampler = "instance"
    test_time = "raw logits"
    follows = "Cui et al. 2021, dvlab-research/Parametric-Contrastive-Learning (PaCo/LT)"

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        if cfg.queue_size < cfg.batch_size:
            raise LTBenchError(
                f"PaCo's queue ({cfg.queue_size}) is smaller than a batch ({cfg.batch_size})",
                "set queue_size to at least batch_size (the official uses K ≥ 4·B)",
            )
        size = task.input_size or 224
        net = PaCoModel(task.create_model(), task.num_classes, cfg.moco_dim, cfg.queue_size, cfg.key_momentum)
        net = net.to(task.device)
        views = TwoViews(query_transform(task.family, size), key_transform(task.family, size))
        dataset = ImageSplit(task.info, "train", views, mode=image_mode(task.family))
        log_pi = log_prior(task.class_counts, task.device, eps=1e-9)

        def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            q, k, centre_logits = net.forward_train(images[:, 0], images[:, 1])
            loss = paco_loss(
                q,
                k,
                net.queue.clone(),
                net.queue_labels.clone(),
                labels,
                centre_logits,
                log_pi,
                cfg.alpha,
                cfg.beta,
                cfg.gamma,
                cfg.temperature,
            )
            net.enqueue(k, labels)
            return loss

        add_stage(task.records, "paco", dataset, cfg, loss="PaCo", queue=cfg.queue_size)
        Trainer(task, cfg, "paco").fit({"paco": net}, net.query_parameters(), step, dataset)
        return net.encoder_q
