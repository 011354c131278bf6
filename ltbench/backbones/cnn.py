"""A small full-precision CNN for 8×8 digits (the FP baseline backbone and the digits teacher's encoder)."""

from __future__ import annotations

import torch
from torch import nn

from ltbench.registry import BACKBONES


class SmallCNN(nn.Module):
    """conv3×3(32)-BN-ReLU → conv3×3(64, s2)-BN-ReLU → conv3×3(128)-BN-ReLU → global pool → linear."""

    def __init__(self, num_classes: int, in_chans: int = 1, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
        )
        self.num_features = 4 * w
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@BACKBONES.register("cnn-digits", binary=False, input_size=8, description="small FP CNN for 8x8 digits")
def cnn_digits(num_classes: int, in_chans: int = 1, width: int = 32) -> SmallCNN:
    return SmallCNN(num_classes, in_chans, width)
