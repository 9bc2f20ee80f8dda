"""Building blocks shared by the architecture families."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Convolution without bias, batch norm, then an activation (none if ``activation`` is None)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SeparableConv3x3(nn.Module):
    """Depthwise 3x3 (+ BN, ReLU) then pointwise 1x1: a drop-in for a 3x3 conv.

    Howard et al. 2017 (MobileNets) factorise a standard convolution this way at
    a cost of 1/C_out + 1/9 of its multiply-adds and weights. The output is left
    without BN and activation, like the convolution it replaces.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def conv3x3(
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    *,
    groups: int = 1,
    separable: bool = False,
) -> nn.Module:
    """A bias-free 3x3 convolution: standard, grouped, or depthwise-separable."""
    if separable:
        if groups != 1:
            raise ValueError("a separable convolution cannot also be grouped")
        return SeparableConv3x3(in_channels, out_channels, stride)
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, groups=groups, bias=False)


def classifier_head(in_features: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pooling, optional dropout, and a linear classifier."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> nn.Module:
    """He initialisation (He et al. 2015, fan-out, as the ResNet, DenseNet and
    ResNeXt papers' reference code do) for convolutions; BN scale 1, shift 0;
    linear layers keep PyTorch's default weights with zero bias."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    return model
