"""Full-precision backbones with pretrained weights: ``resnet152`` (torchvision) and ``efficientnetv2-m-in21k``
(timm ``tf_efficientnetv2_m.in21k``), plus local weight files for any backbone.

Weights carry their preprocessing, torchvision ``Weights``-style: :data:`WEIGHTS` maps a weights name to a
:class:`WeightsInfo` (library, identifier, :class:`Preprocess` — resolution, resize, mean/std,
interpolation — and where the library caches the file). Pretrained files are fetched and cached by
torchvision (``$TORCH_HOME/hub/checkpoints``) or timm (the Hugging Face Hub cache); offline with no cached
copy, loading fails with one :class:`LTBenchError` naming the weights and the cache path.

A local file (``--set weights=PATH`` or the ``weights=PATH`` backbone kwarg) is loaded with
``torch.load(weights_only=True)``: our own state dict, or the library's (torchvision ``fc.*`` keys map to
our ``classifier.*``); a classifier whose shape does not fit the task is left at its initialisation, and any
other missing or unexpected key is an error.

Every model here has ``num_features``, ``forward_feature_map(x) -> (B, C, h, w)`` (what CANDLE's teacher
needs), ``forward_features(x) -> (B, C)``, ``classifier`` and ``preprocess`` (None without weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ltbench.errors import LTBenchError, download_or_hint
from ltbench.registry import BACKBONES


@dataclass(frozen=True)
class Preprocess:
    """How inputs must be prepared for a set of weights (eval: resize to ``resize``, centre-crop
    ``resolution``; normalise with ``mean``/``std``)."""

    resolution: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def eval_transform(self):
        import torch
        from torchvision.transforms import InterpolationMode, v2

        mode = InterpolationMode(self.interpolation)
        return v2.Compose(
            [
                v2.Resize(self.resize, interpolation=mode, antialias=True),
                v2.CenterCrop(self.resolution),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )


@dataclass(frozen=True)
class WeightsInfo:
    name: str
    library: str  # torchvision | timm
    ident: str  # torchvision enum member name | timm model tag
    preprocess: Preprocess
    description: str = ""

    def cache_path(self) -> Path:
        if self.library == "torchvision":
            return Path(torch.hub.get_dir()) / "checkpoints" / Path(_tv_weights(self.ident).url).name
        from huggingface_hub.constants import HF_HUB_CACHE

        return Path(HF_HUB_CACHE) / f"models--timm--{self.ident}"


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
WEIGHTS: dict[str, WeightsInfo] = {
    "IMAGENET1K_V1": WeightsInfo(
        "IMAGENET1K_V1",
        "torchvision",
        "IMAGENET1K_V1",
        Preprocess(224, 256, *IMAGENET),
        "torchvision ResNet-152, original recipe, 78.3% ImageNet top-1",
    ),
    "IMAGENET1K_V2": WeightsInfo(
        "IMAGENET1K_V2",
        "torchvision",
        "IMAGENET1K_V2",
        Preprocess(224, 232, *IMAGENET),
        "torchvision ResNet-152, new recipe, 82.3% ImageNet top-1",
    ),
    "in21k": WeightsInfo(
        "in21k",
        "timm",
        "tf_efficientnetv2_m.in21k",
        Preprocess(480, 480, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic"),
        "timm EfficientNetV2-M trained on ImageNet-21k (test size 480, crop_pct 1.0)",
    ),
}


def _tv_weights(ident: str):
    from torchvision.models import ResNet152_Weights

    return ResNet152_Weights[ident]


def is_weights_file(weights: Any) -> bool:
    s = "" if weights is None else str(weights)
    if not s:
        return False
    return os.sep in s or s.endswith((".pt", ".pth", ".bin", ".ckpt")) or Path(s).is_file()


def offline_error(info: WeightsInfo, err: BaseException) -> LTBenchError:
    return LTBenchError(
        f"cannot load {info.library} weights {info.ident} ({type(err).__name__}): not in the cache "
        f"{info.cache_path()} and the download failed",
        "connect once to download them, copy the file into that cache, or pass --set weights=PATH",
    )


def load_weights_file(model: nn.Module, path: str | Path, rename: dict[str, str] | None = None) -> None:
    """Load a local state dict into ``model`` (``weights_only=True``); see the module docstring."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LTBenchError(f"weights file {path} does not exist", "check the path given to weights=")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise LTBenchError(f"{path} holds no state dict", "save it with torch.save(model.state_dict(), path)")
    own = model.state_dict()
    fixed = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        for old, new in (rename or {}).items():
            if k.startswith(old):
                k = new + k[len(old) :]
        fixed[k] = v
    for k in [k for k in fixed if k.startswith("classifier.")]:
        if k in own and fixed[k].shape != own[k].shape:
            del fixed[k]  # a head for another number of classes: keep ours
    missing = [k for k in own if k not in fixed and not k.startswith("classifier.")]
    unexpected = [k for k in fixed if k not in own]
    if missing or unexpected:
        raise LTBenchError(
            f"{path} does not fit this backbone: missing {missing[:3]}, unexpected {unexpected[:3]}",
            "give a state dict saved from the same backbone",
        )
    model.load_state_dict(fixed, strict=False)


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet with ``forward_feature_map`` (``layer4`` output) and a ``classifier``."""

    def __init__(self, net: nn.Module, num_classes: int, preprocess: Preprocess | None):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.num_features = net.fc.in_features
        self.classifier = (
            net.fc if net.fc.out_features == num_classes else nn.Linear(self.num_features, num_classes)
        )
        self.preprocess = preprocess

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


class TimmEncoder(nn.Module):
    """A timm model without its head (``body``), pooled by averaging, with our own ``classifier``."""

    def __init__(self, body: nn.Module, num_classes: int, preprocess: Preprocess | None):
        super().__init__()
        self.body = body
        self.num_features = body.num_features
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.preprocess = preprocess

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def _named(weights: str | None, allowed: tuple[str, ...], backbone: str) -> WeightsInfo | None:
    if weights is None or str(weights).lower() in ("", "none", "random"):
        return None
    w = "IMAGENET1K_V2" if weights == "DEFAULT" and backbone == "resnet152" else weights
    if w not in allowed:
        raise LTBenchError(
            f"unknown weights {weights!r} for {backbone}",
            f"choose one of {', '.join(allowed)}, or a file path",
        )
    return WEIGHTS[w]


@BACKBONES.register(
    "resnet152",
    binary=False,
    input_size=224,
    description="torchvision ResNet-152 (weights IMAGENET1K_V1 | IMAGENET1K_V2 | a file; default random)",
)
def resnet152(num_classes: int, in_chans: int = 3, weights: str | None = None) -> TorchvisionResNet:
    from torchvision.models import resnet152 as tv_resnet152

    info = _named(weights, ("IMAGENET1K_V1", "IMAGENET1K_V2"), "resnet152")
    if in_chans != 3:
        raise LTBenchError(f"resnet152 takes 3-channel images, got {in_chans}", "use an RGB dataset")
    if info is None:
        return TorchvisionResNet(tv_resnet152(num_classes=num_classes), num_classes, None)
    try:
        net = tv_resnet152(weights=_tv_weights(info.ident))
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise offline_error(info, e) from None
    return TorchvisionResNet(net, num_classes, info.preprocess)


@BACKBONES.register(
    "efficientnetv2-m-in21k",
    binary=False,
    input_size=480,
    description="timm tf_efficientnetv2_m.in21k (ImageNet-21k weights unless weights=none)",
)
def efficientnetv2_m_in21k(num_classes: int, in_chans: int = 3, weights: str | None = "in21k") -> TimmEncoder:
    import timm

    info = _named(weights, ("in21k",), "efficientnetv2-m-in21k")
    if in_chans != 3:
        raise LTBenchError(f"efficientnetv2-m takes 3-channel images, got {in_chans}", "use an RGB dataset")
    if info is None:
        return TimmEncoder(timm.create_model("tf_efficientnetv2_m", num_classes=0), num_classes, None)
    body = download_or_hint(
        lambda: timm.create_model(info.ident, pretrained=True, num_classes=0),
        "",
        "",
        error=lambda e: offline_error(info, e),  # huggingface_hub's offline errors are OSErrors
    )
    return TimmEncoder(body, num_classes, info.preprocess)
