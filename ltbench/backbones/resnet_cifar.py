"""ResNet-32 for 32×32 inputs, the CIFAR-LT literature's backbone (LDAM-DRW ``models/resnet_cifar.py``).

3×3 conv 16 → BN → ReLU → three stages of 5 basic blocks (16, 32, 64 channels; stride 2 at the start of
stages 2 and 3) → global average pool (64-d) → linear. Shortcuts are option A (parameter-free: stride-2
subsampling and zero-padded channels), as in He et al.'s CIFAR ResNets and LDAM-DRW. Kaiming-normal init
of conv and linear weights. 0.46 M parameters (CIFAR-10 head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.registry import BACKBONES


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; option-A shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes - in_planes if (stride != 1 or in_planes != planes) else None
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is None:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 3, depth: int = 32):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.num_features = 64
        self.classifier = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@BACKBONES.register(
    "resnet32",
    binary=False,
    input_size=32,
    description="CIFAR ResNet-32 (LDAM-DRW's LT backbone), 32x32 input",
)
def resnet32(num_classes: int, in_chans: int = 3) -> ResNetCifar:
    return ResNetCifar(num_classes, in_chans, 32)
