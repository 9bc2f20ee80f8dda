"""Plain deep networks: the residual nets of resnet.py with every shortcut removed.

He et al. 2016 (arXiv:1512.03385), section 4.2, compare plain nets of 20-110
layers with ResNets of the same depth, width and parameter count to show the
degradation problem: without shortcuts, deeper is worse. ``plain18`` is the
same experiment for ``resnet18_cifar`` (whose 1x1 projection shortcuts it drops
too, so it has slightly fewer parameters than its twin).
"""

from __future__ import annotations

from ._registry import Family, Relations, register
from .resnet import CIFAR_DEPTHS, HE_2016, IMAGENET_LAYOUTS, PLAIN_TWINS, ResNet, cifar_resnet

for _depth in CIFAR_DEPTHS:
    register(
        f"plain{_depth}",
        family=Family.PLAIN,
        paper=HE_2016,
        relations=Relations(depth=_depth),
        depth=_depth,
        residual=False,
    )(cifar_resnet)

for _residual, _plain in PLAIN_TWINS.items():
    register(
        _plain, family=Family.PLAIN, paper=HE_2016, residual=False, **IMAGENET_LAYOUTS[_residual]
    )(ResNet)
