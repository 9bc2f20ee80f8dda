"""Residual networks: He et al. 2016, "Deep Residual Learning for Image
Recognition" (arXiv:1512.03385).

One ``ResNet`` class serves every net in the suite that is a stack of residual
stages, so that twins differ in exactly one switch:

- ``residual=False`` drops every shortcut: the plain nets of plain.py;
- ``groups`` makes the 3x3 convolutions grouped: resnext.py;
- ``separable=True`` makes them depthwise-separable: mobilenet.py.

Two layouts are registered here:

- the CIFAR ResNets (section 4.2): 6n+2 layers, a 3x3 stem of 16 channels,
  three stages of n basic blocks at 16/32/64 channels on 32/16/8 maps, and
  option A shortcuts (identity, with stride-2 subsampling and zero-padded
  channels where the shape changes), so a ResNet has exactly the parameters of
  its plain twin;
- the ImageNet ResNets adapted to CIFAR as is customary: a 3x3 stride-1 stem of
  64 channels and no max pool, four stages at 64/128/256/512, 1x1 projection
  shortcuts with BN where the shape changes (option B). Departure: bottleneck
  blocks put the stride on the 3x3 convolution, as torchvision's "ResNet v1.5"
  does, not on the first 1x1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Change, Family, Relations, register
from .layers import ConvBNAct, classifier_head, conv3x3, init_weights

HE_2016 = "He et al. 2016, arXiv:1512.03385"
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def make_shortcut(
    kind: str | None, in_channels: int, out_channels: int, stride: int
) -> nn.Module | None:
    """None for a plain block (``kind`` None); else identity where the shape is kept,
    option A (zero-pad) or option B (1x1 projection + BN) where it changes."""
    if kind is None:
        return None
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if kind == "B":
        return ConvBNAct(in_channels, out_channels, 1, stride, activation=None)
    raise ValueError(f"shortcut must be 'A' or 'B', not {kind!r}")


class ResidualBlock(nn.Module):
    """A block whose output is ReLU(body + shortcut), or ReLU(body) without one."""

    shortcut: nn.Module | None

    def merge(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions with BN; ReLU after the sum."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        shortcut: str | None,
        groups: int = 1,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride, groups=groups, separable=separable)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels, groups=groups, separable=separable)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return self.merge(self.bn2(self.conv2(out)), x)


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3 (strided, optionally grouped or separable), 1x1 expand."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        shortcut: str | None,
        groups: int = 1,
        separable: bool = False,
        bottleneck_width: int | None = None,
    ) -> None:
        super().__init__()
        width = bottleneck_width or out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups=groups, separable=separable)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.merge(self.bn3(self.conv3(out)), x)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A 3x3 stem, stages of residual blocks (the first of each stage but the
    first downsamples by 2), global average pooling and a linear classifier.

    ``widths`` are the stages' output channels; ``bottleneck_widths`` the inner
    widths of bottleneck blocks (default: a quarter of the output).
    """

    def __init__(
        self,
        *,
        block: str = "basic",
        depths: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        bottleneck_widths: Sequence[int] | None = None,
        stem_width: int = 64,
        shortcut: str = "B",
        residual: bool = True,
        groups: int = 1,
        separable: bool = False,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, not {block!r}")
        if bottleneck_widths and block != "bottleneck":
            raise ValueError("bottleneck_widths apply only to block='bottleneck'")
        if not len(depths) == len(widths) == len(bottleneck_widths or widths):
            raise ValueError("depths, widths and bottleneck_widths need one entry per stage")
        self.stem = ConvBNAct(in_channels, stem_width, 3)
        stages, channels = [], stem_width
        for index, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            blocks = []
            inner = {"bottleneck_width": bottleneck_widths[index]} if bottleneck_widths else {}
            for position in range(depth):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(
                    BLOCKS[block](
                        channels,
                        width,
                        stride,
                        shortcut=shortcut if residual else None,
                        groups=groups,
                        separable=separable,
                        **inner,
                    )
                )
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = classifier_head(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def cifar_resnet(
    *,
    depth: int = 20,
    residual: bool = True,
    groups: int = 1,
    separable: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
) -> ResNet:
    """He et al.'s CIFAR ResNet (or plain net) of ``depth`` = 6n+2 layers, option A shortcuts."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, 110, ...), not {depth}")
    n = (depth - 2) // 6
    return ResNet(
        block="basic",
        depths=(n, n, n),
        widths=(16, 32, 64),
        stem_width=16,
        shortcut="A",
        residual=residual,
        groups=groups,
        separable=separable,
        num_classes=num_classes,
        in_channels=in_channels,
    )


for _depth in CIFAR_DEPTHS:
    register(
        f"resnet{_depth}",
        family=Family.RESNET,
        paper=HE_2016,
        relations=Relations(depth=_depth, twin=f"plain{_depth}", change=Change.RESIDUAL),
        depth=_depth,
    )(cifar_resnet)

IMAGENET_LAYOUTS: dict[str, dict[str, Any]] = {
    "resnet18_cifar": dict(block="basic", depths=(2, 2, 2, 2), widths=(64, 128, 256, 512)),
    "resnet34_cifar": dict(block="basic", depths=(3, 4, 6, 3), widths=(64, 128, 256, 512)),
    "resnet50_cifar": dict(block="bottleneck", depths=(3, 4, 6, 3), widths=(256, 512, 1024, 2048)),
}
PLAIN_TWINS = {"resnet18_cifar": "plain18"}  # plain.py registers them
for _name, _layout in IMAGENET_LAYOUTS.items():
    _twin = PLAIN_TWINS.get(_name)
    _relations = Relations(twin=_twin, change=Change.RESIDUAL) if _twin else Relations()
    register(_name, family=Family.RESNET, paper=HE_2016, relations=_relations, **_layout)(ResNet)
