"""Densely connected networks: Huang et al. 2017, "Densely Connected
Convolutional Networks" (arXiv:1608.06993), the CIFAR layout of section 3.

A 3x3 stem (16 channels, or 2k for DenseNet-BC), three dense blocks of equal
length joined by transitions (BN-ReLU-1x1 conv-2x2 average pool, keeping a
``compression`` fraction of the channels), then BN-ReLU, global average pooling
and a linear classifier. Each dense layer is BN-ReLU-3x3 conv producing
``growth_rate`` (k) maps, preceded in the bottleneck (B) form by BN-ReLU-1x1 conv
to 4k maps, and its output is concatenated to its input. Departure: no dropout,
as the paper uses none with data augmentation.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import Family, register
from .layers import classifier_head, init_weights

HUANG_2017 = "Huang et al. 2017, arXiv:1608.06993"


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """The pre-activation unit of DenseNet: BN, ReLU, bias-free convolution."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


class DenseLayer(nn.Module):
    """Produces ``growth_rate`` new maps and returns them concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck: bool) -> None:
        super().__init__()
        if bottleneck:
            self.body = nn.Sequential(
                bn_relu_conv(in_channels, 4 * growth_rate, 1),
                bn_relu_conv(4 * growth_rate, growth_rate, 3),
            )
        else:
            self.body = bn_relu_conv(in_channels, growth_rate, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseNet(nn.Module):
    """DenseNet for CIFAR of ``depth`` layers: (depth - 4) / 3 dense layers per
    block, halved when each layer has a bottleneck (two convolutions)."""

    def __init__(
        self,
        *,
        depth: int = 40,
        growth_rate: int = 12,
        bottleneck: bool = False,
        compression: float = 1.0,
        stem_width: int | None = None,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        convs_per_layer = 2 if bottleneck else 1
        if (depth - 4) % (3 * convs_per_layer) or depth <= 4:
            raise ValueError(
                f"depth must be 3*{convs_per_layer}*n + 4 for bottleneck={bottleneck}, not {depth}"
            )
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], not {compression}")
        layers_per_block = (depth - 4) // (3 * convs_per_layer)
        channels = stem_width or (2 * growth_rate if bottleneck else 16)
        features: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                features.append(DenseLayer(channels, growth_rate, bottleneck))
                channels += growth_rate
            if block < 2:
                reduced = int(channels * compression)
                features += [bn_relu_conv(channels, reduced, 1), nn.AvgPool2d(2)]
                channels = reduced
        features += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*features)
        self.head = classifier_head(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


register("densenet40_k12", family=Family.DENSENET, paper=HUANG_2017, depth=40, growth_rate=12)(
    DenseNet
)
register(
    "densenet_bc100_k12",
    family=Family.DENSENET,
    paper=HUANG_2017,
    depth=100,
    growth_rate=12,
    bottleneck=True,
    compression=0.5,
)(DenseNet)
