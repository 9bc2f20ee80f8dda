"""Grouped convolutions: Xie et al. 2017, "Aggregated Residual Transformations
for Deep Neural Networks" (ResNeXt, arXiv:1611.05431), and the CIFAR ResNets of
resnet.py with grouped 3x3 convolutions.

ResNeXt-29 (section 5.3, Table 7): a 3x3 stem of 64 channels, three stages of
three bottleneck blocks with outputs of 256/512/1024 channels, each block's 3x3
convolution split into ``cardinality`` groups of ``base_width`` channels in the
first stage (doubling per stage), 1x1 projection shortcuts where the shape
changes. ``widen_factor`` scales the stage outputs (64 * widen_factor * 2^i,
4 in the paper) so that small members fit a CPU.

``resnet20_grouped`` / ``resnet56_grouped`` are He et al.'s CIFAR ResNets with
``groups`` groups in every 3x3 convolution of the residual blocks (the stem
stays dense): the same widths and depth, so groups can be swept at fixed width.
"""

from __future__ import annotations

from ._registry import Change, Family, Relations, register
from .resnet import HE_2016, ResNet, cifar_resnet

XIE_2017 = "Xie et al. 2017, arXiv:1611.05431"


def resnext29(
    *,
    cardinality: int = 8,
    base_width: int = 64,
    widen_factor: int = 4,
    num_classes: int = 10,
    in_channels: int = 3,
) -> ResNet:
    """ResNeXt-29 (C x d) for CIFAR: C = ``cardinality`` groups of d = ``base_width`` channels."""
    inner = cardinality * base_width
    return ResNet(
        block="bottleneck",
        depths=(3, 3, 3),
        widths=tuple(64 * widen_factor * 2**i for i in range(3)),
        bottleneck_widths=(inner, 2 * inner, 4 * inner),
        stem_width=64,
        shortcut="B",
        groups=cardinality,
        num_classes=num_classes,
        in_channels=in_channels,
    )


for _cardinality, _base_width in ((8, 64), (16, 64), (2, 32), (4, 16)):
    register(
        f"resnext29_{_cardinality}x{_base_width}d",
        family=Family.GROUPED,
        paper=XIE_2017,
        cardinality=_cardinality,
        base_width=_base_width,
    )(resnext29)

for _depth in (20, 56):
    register(
        f"resnet{_depth}_grouped",
        family=Family.GROUPED,
        paper=f"{HE_2016}; {XIE_2017}",
        relations=Relations(depth=_depth, twin=f"resnet{_depth}", change=Change.GROUPS),
        depth=_depth,
        groups=4,
    )(cifar_resnet)
