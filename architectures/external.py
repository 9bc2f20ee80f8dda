"""Models of other libraries by name: ``torchvision:NAME`` and ``timm:NAME``.

Any torchvision classification model, and any timm model when timm is
installed, goes through the same harness as the suite's own nets. They are
built untrained (no weights are downloaded) and timed at their native input (the
input of their default weights: 3x224x224 for most, 3x299x299 for Inception v3) with
their 1,000-class head, even in a suite with a data set (only their training rows are
fitted to the data set's images and classes).
``in_channels`` other than 3 replaces the first convolution of a torchvision
model with one of the same geometry; timm handles it natively (``in_chans``).
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from typing import Any

from torch import nn

from ._registry import (
    ArchSpec,
    Builder,
    ExternalSource,
    Family,
    RegistryError,
    make_spec,
    register_external,
    unknown_name_message,
)

IMAGENET_SHAPE = (3, 224, 224)  # when a model names no input of its own


@functools.cache
def torchvision_names() -> list[str]:
    """torchvision's classification models (not detection, segmentation, video)."""
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_builder(name: str) -> Builder:
    """A builder of the untrained torchvision classification model ``name``."""

    def build(*, num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
        import torchvision.models

        with warnings.catch_warnings():  # GoogLeNet and Inception warn about their default init
            warnings.simplefilter("ignore", FutureWarning)
            model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            replace_first_conv(model, in_channels)
        return model

    return build


def replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the model's first Conv2d for one reading ``in_channels`` channels."""
    path, conv = next((p, m) for p, m in model.named_modules() if isinstance(m, nn.Conv2d))
    parent_path, _, attribute = path.rpartition(".")
    replacement = nn.Conv2d(
        in_channels,
        conv.out_channels,
        _pair(conv.kernel_size),
        _pair(conv.stride),
        conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
        _pair(conv.dilation),
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    setattr(model.get_submodule(parent_path), attribute, replacement)


def _pair(value: tuple[int, ...]) -> tuple[int, int]:
    """A 2d convolution's size along height and width."""
    return value[0], value[1]


def torchvision_input_shape(name: str) -> tuple[int, ...]:
    """The input of the model's default weights (their crop size), read without building
    the model or downloading the weights."""
    import torchvision.models

    try:
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms
    except (ValueError, AttributeError):  # a model without weights
        return IMAGENET_SHAPE
    side = getattr(transforms, "keywords", {}).get("crop_size", IMAGENET_SHAPE[-1])
    return (3, side, side)


def timm_input_shape(name: str) -> tuple[int, ...]:
    """The input of the model's default pretrained config, read without building it."""
    config = _require_timm().models.get_pretrained_cfg(name)
    return tuple(config.input_size) if config and config.input_size else IMAGENET_SHAPE


def external_spec(
    library: str, name: str, known: list[str], builder: Builder, input_shape: tuple[int, ...]
) -> ArchSpec:
    """The ArchSpec of ``library:name``, or a RegistryError with close names."""
    if name not in known:
        raise RegistryError(
            unknown_name_message(
                name, known, kind=f"{library} model", see="see `archbench list --external`"
            )
        )
    return make_spec(
        f"{library}:{name}",
        builder,
        family=Family.OTHER,
        paper=f"{library} {name}",
        input_shape=input_shape,
        defaults={},
        native_input=True,
    )


def torchvision_spec(name: str) -> ArchSpec:
    known = torchvision_names()
    shape = torchvision_input_shape(name) if name in known else IMAGENET_SHAPE
    return external_spec("torchvision", name, known, torchvision_builder(name), shape)


def _require_timm() -> Any:
    """The timm module, or a RegistryError saying how to install it."""
    if importlib.util.find_spec("timm") is None:
        raise RegistryError("timm models need timm, which is not installed: pip install timm")
    import timm

    return timm


@functools.cache
def timm_names() -> list[str]:
    """timm's models, or none when timm is not installed."""
    return _require_timm().list_models() if importlib.util.find_spec("timm") else []


def timm_builder(name: str) -> Builder:
    """A builder of the untrained timm model ``name``."""

    def build(*, num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
        return _require_timm().create_model(
            name, pretrained=False, num_classes=num_classes, in_chans=in_channels
        )

    return build


def timm_spec(name: str) -> ArchSpec:
    _require_timm()  # without timm: how to install it, not "unknown model"
    known = timm_names()
    shape = timm_input_shape(name) if name in known else IMAGENET_SHAPE
    return external_spec("timm", name, known, timm_builder(name), shape)


register_external("torchvision", ExternalSource(resolve=torchvision_spec, names=torchvision_names))
register_external("timm", ExternalSource(resolve=timm_spec, names=timm_names))
