"""Wide residual networks: Zagoruyko & Komodakis 2016, "Wide Residual Networks"
(arXiv:1605.07146).

WRN-n-k: a 3x3 stem of 16 channels, three stages of (n-4)/6 pre-activation basic
blocks (BN-ReLU-conv3x3, BN-ReLU-dropout-conv3x3) at 16k/32k/64k channels on
32/16/8 maps, a final BN-ReLU, global average pooling and a linear classifier.
Where a block changes the shape, its shortcut is a 1x1 convolution of the
pre-activated input, as in the authors' code. ``dropout`` is the rate between a
block's two convolutions (the paper's 0.3 when used; 0 by default).

They answer the width question the other way round from the grouped and
separable nets: not a cheaper 3x3 convolution, a wider one, with fewer layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Family, Relations, register
from .layers import conv3x3, init_weights

ZAGORUYKO_2016 = "Zagoruyko & Komodakis 2016, arXiv:1605.07146"
VARIANTS = ((16, 1), (16, 2), (16, 4), (16, 8), (28, 10), (40, 4))  # (depth, widen)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = conv3x3(out_channels, out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.projection = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if reshapes else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        shortcut = x if self.projection is None else self.projection(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-``depth``-``widen``: depth = 6N + 4 (N blocks a stage)."""

    def __init__(
        self,
        *,
        depth: int = 16,
        widen: int = 1,
        dropout: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth must be 6N+4 (10, 16, 22, 28, 40, ...), not {depth}")
        if widen < 1:
            raise ValueError(f"widen must be a positive integer, not {widen}")
        blocks_per_stage = (depth - 4) // 6
        self.stem = conv3x3(in_channels, 16)
        stages, channels = [], 16
        for index, width in enumerate((16 * widen, 32 * widen, 64 * widen)):
            blocks = []
            for position in range(blocks_per_stage):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(PreActBlock(channels, width, stride, dropout))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


for _depth, _widen in VARIANTS:
    register(
        f"wrn{_depth}_{_widen}",
        family=Family.WIDE,
        paper=ZAGORUYKO_2016,
        relations=Relations(depth=_depth, widen=_widen),
        depth=_depth,
        widen=_widen,
    )(WideResNet)
