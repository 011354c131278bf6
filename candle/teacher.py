"""CANDLE's teacher: a frozen pretrained FP encoder plus a calibrated multi-resolution head (Alg. 2, App. D).

``MultiResTeacher(encoder, ...)`` resizes the student's input ``x`` (the base resolution) to every resolution
of ``resolutions`` (e.g. 128/224/480, base 224), runs the frozen encoder's ``forward_feature_map`` on each
under ``no_grad``, maps each feature map to the student's feature width with its own 1×1 conv (A8), resizes
the projected maps to the base map's spatial size by nearest interpolation (A7: the 128-input map is the
*smaller* one, so it is up-sampled and the 480-input map down-sampled, whatever Alg. 2's line 4 says),
concatenates them along channels (R×W), global-average pools and applies a new linear classifier ``c^T``.
It returns the logits and the base-resolution branch's pooled projected feature (Fig. 1 Ⓐ, used by L_FS).

The head is linear from the frozen maps to the logits (1×1 conv → nearest resize → pool → linear, no
non-linearity in Alg. 2), so ``pool(resize(conv(m))) = conv(pool(resize(m)))`` exactly: ``pooled_maps``
gives per-resolution vectors of the frozen layers (what ``cache_teacher`` stores) and ``head_pooled`` gives
the same logits and feature from them as ``head`` does from the maps (tested).

Teachers per dataset family (``ltbench.families``; A15: the weight versions are the ones ``ltbench.teachers``
loads): ``digits`` → the small FP CNN pretrained on digits' ``pretrain`` split; ``small`` → ResNet-152
(ImageNet-1K); ``large`` → EfficientNetV2-M (ImageNet-21K).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.errors import LTBenchError
from ltbench.families import PAPER_RESOLUTIONS, get_family

__all__ = ["PAPER_RESOLUTIONS", "MultiResTeacher", "default_teacher", "resolve_resolutions"]


def default_teacher(family: str) -> str:
    return get_family(family).teacher


def resolve_resolutions(
    family: str, base: int, requested: Sequence[int] = (), multires: bool = True
) -> tuple[int, ...]:
    """The teacher's input resolutions (ascending), ``base`` (the student's input size) among them.

    Empty ``requested`` means the family's (:meth:`ltbench.families.Family.teacher_resolutions`: the paper's
    128/224/480 scaled by base/224, or 4/8/16 for digits at its native 8 px). ``multires=False`` keeps only
    ``base`` (single-resolution teacher).
    """
    if not multires:
        return (int(base),)
    if requested:
        res = tuple(sorted({int(r) for r in requested}))
    else:
        res = get_family(family).teacher_resolutions(base)
    if base not in res:
        raise LTBenchError(
            f"the teacher's resolutions {list(res)} do not include the student's input size {base}",
            f"add {base} to --set resolutions=... (the base resolution is the student's input)",
        )
    return res


def resize_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Input down/up-sampling of Alg. 2 line 2: bilinear, anti-aliased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def encoder_channels(encoder: nn.Module, in_chans: int, size: int, device: torch.device) -> int:
    """Channels of ``encoder.forward_feature_map`` (read from one dummy forward)."""
    with torch.no_grad():
        return int(encoder.forward_feature_map(torch.zeros(1, in_chans, size, size, device=device)).shape[1])


class MultiResTeacher(nn.Module):
    """Frozen encoder e^T + per-resolution 1×1 convs + nearest resize + concat + pool + classifier c^T."""

    def __init__(
        self,
        encoder: nn.Module,
        enc_channels: int,
        width: int,
        num_classes: int,
        resolutions: Sequence[int],
        base: int,
        renorm: tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]] | None = None,
    ):
        """``renorm`` = (student mean, student std, teacher mean, teacher std): re-normalises the student's
        input for the encoder when their weights expect other statistics (e.g. EfficientNetV2 IN-21K's 0.5)."""
        super().__init__()
        self.resolutions = tuple(int(r) for r in resolutions)
        if base not in self.resolutions:
            raise ValueError(f"base resolution {base} not in {self.resolutions}")
        self.base = int(base)
        self.base_index = self.resolutions.index(self.base)
        self.width = int(width)
        self.num_classes = int(num_classes)
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.renorm = renorm is not None and tuple(map(tuple, renorm[:2])) != tuple(map(tuple, renorm[2:]))
        if self.renorm:
            ms, ss, mt, st = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in renorm)
            self.register_buffer("in_scale", ss / st, persistent=False)
            self.register_buffer("in_shift", (ms - mt) / st, persistent=False)
        self.proj = nn.ModuleList(nn.Conv2d(enc_channels, width, 1) for _ in self.resolutions)
        self.classifier = nn.Linear(width * len(self.resolutions), num_classes)

    def train(self, mode: bool = True) -> MultiResTeacher:
        """Only the head trains; the encoder stays in eval mode (frozen, no BN re-estimation — A9)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.proj.parameters(), *self.classifier.parameters()]

    def inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x_S, x_B, x_L, …: ``x`` (base resolution) resized to every resolution."""
        h, w = x.shape[-2:]
        if self.renorm:
            x = x * self.in_scale + self.in_shift
        return [
            resize_image(x, (round(h * r / self.base), round(w * r / self.base))) for r in self.resolutions
        ]

    @torch.no_grad()
    def encoder_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Frozen-encoder feature maps per resolution (no autograd graph: the encoder is never trained)."""
        return [self.encoder.forward_feature_map(xi) for xi in self.inputs(x)]

    def head(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Alg. 2 lines 4–6 from the encoder maps: (logits, base-resolution pooled projected feature)."""
        projected = [p(m) for p, m in zip(self.proj, maps, strict=True)]
        size = projected[self.base_index].shape[-2:]
        resized = [
            q if q.shape[-2:] == size else F.interpolate(q, size=size, mode="nearest") for q in projected
        ]
        pooled = torch.cat(resized, dim=1).mean(dim=(2, 3))
        b = self.base_index * self.width
        return self.classifier(pooled), pooled[:, b : b + self.width]

    def pooled_maps(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, R, C_enc): each frozen map nearest-resized to the base map size, then averaged (cacheable)."""
        size = maps[self.base_index].shape[-2:]
        return torch.stack(
            [
                (m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="nearest")).mean(dim=(2, 3))
                for m in maps
            ],
            dim=1,
        )

    def head_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``head`` from ``pooled_maps`` output: the same values (the head is linear up to the classifier)."""
        feats = [F.linear(pooled[:, i], p.weight.flatten(1), p.bias) for i, p in enumerate(self.proj)]
        return self.classifier(torch.cat(feats, dim=1)), feats[self.base_index]

    def forward_distill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alg. 2: (logits l, teacher feature e^T_B) for the student's input ``x``."""
        return self.head(self.encoder_maps(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_distill(x)[0]


def load_encoder(name: str, device: torch.device, info=None, weights: str | None = None) -> nn.Module:
    """The frozen pretrained encoder ``name`` (``digits``, ``resnet152``, ``efficientnetv2-m-in21k``) from
    ``ltbench.teachers`` with ``weights`` (None: its default); ``info`` (a built digits split) supplies the
    digits teacher's ``pretrain`` images."""
    from ltbench.teachers import pretrained_encoder

    enc = pretrained_encoder(name, device, weights=weights, info=info if name == "digits" else None)
    if not hasattr(enc, "forward_feature_map"):
        raise LTBenchError(
            f"teacher {name!r} has no forward_feature_map", "use a teacher from ltbench.teachers"
        )
    return enc.to(device)
