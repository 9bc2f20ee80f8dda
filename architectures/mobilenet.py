"""Depthwise-separable convolutions: MobileNet v1 (Howard et al. 2017,
arXiv:1704.04861), MobileNet v2 (Sandler et al. 2018, arXiv:1801.04381), and
the CIFAR ResNets of resnet.py with separable 3x3 convolutions.

Departures, all for 32x32 inputs as in common CIFAR reimplementations:

- v1: the stem convolution has stride 1 (paper: 2), so five stride-2 layers
  take 32x32 to 1x1 instead of 224x224 to 7x7.
- v2: the stem and the first 24-channel stage have stride 1 (paper: 2 each),
  leaving three stride-2 stages (32x32 to 4x4). Dropout 0.2 before the
  classifier, as in the reference implementations.

``resnet20_dw`` / ``resnet56_dw`` replace every 3x3 convolution of the residual
blocks by a depthwise 3x3 (+ BN, ReLU) and a pointwise 1x1 at the same widths
and depths, so standard and separable convolutions are compared in otherwise
identical networks. The stem stays a full convolution, as in MobileNet.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import Change, Family, Relations, register
from .layers import ConvBNAct, classifier_head, init_weights
from .resnet import HE_2016, cifar_resnet

HOWARD_2017 = "Howard et al. 2017, arXiv:1704.04861"
SANDLER_2018 = "Sandler et al. 2018, arXiv:1801.04381"

# (output channels, stride) of the 13 depthwise-separable layers, CIFAR strides.
V1_LAYERS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip

# (expansion t, output channels c, repeats n, stride s) of Sandler et al. Table 2, CIFAR strides.
V2_STAGES = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


class MobileNetV1(nn.Module):
    """A 3x3 stem of 32 channels and 13 depthwise-separable layers, each a
    depthwise 3x3 and a pointwise 1x1 with BN and ReLU after both; every width
    is scaled by the width multiplier alpha."""

    def __init__(
        self, *, width_mult: float = 1.0, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        channels = int(32 * width_mult)
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3)]
        for out_channels, stride in V1_LAYERS:
            out_channels = int(out_channels * width_mult)
            layers.append(
                nn.Sequential(
                    ConvBNAct(channels, channels, 3, stride, groups=channels),
                    ConvBNAct(channels, out_channels, 1),
                )
            )
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, never below 90% of it (MobileNetV2's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    """1x1 expansion (ReLU6), depthwise 3x3 (ReLU6), linear 1x1 projection;
    an identity shortcut where stride and width are kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            ConvBNAct(hidden, out_channels, 1, activation=None),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """A 3x3 stem of 32 channels, the inverted-residual stages of Table 2, a
    1x1 convolution to 1280 channels, and the classifier."""

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        channels = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, activation=nn.ReLU6)]
        for expansion, width, repeats, stride in V2_STAGES:
            out_channels = make_divisible(width * width_mult)
            for index in range(repeats):
                layers.append(
                    InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion)
                )
                channels = out_channels
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        layers.append(ConvBNAct(channels, last_channels, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(last_channels, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


register("mobilenet_v1", family=Family.SEPARABLE, paper=HOWARD_2017)(MobileNetV1)
register("mobilenet_v2", family=Family.SEPARABLE, paper=SANDLER_2018)(MobileNetV2)
for _depth in (20, 56):
    register(
        f"resnet{_depth}_dw",
        family=Family.SEPARABLE,
        paper=f"{HE_2016}; {HOWARD_2017}",
        relations=Relations(depth=_depth, twin=f"resnet{_depth}", change=Change.SEPARABLE),
        depth=_depth,
        separable=True,
    )(cifar_resnet)
