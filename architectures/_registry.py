"""The architecture registry: name -> ArchSpec -> nn.Module.

An architecture is registered once, under the name of one variant, with the
builder that makes it and the keyword defaults that distinguish this variant::

    register("resnet20", family="resnet", paper=HE_2016, depth=20)(CifarResNet)

The builder's keyword parameters are the variant's config: every one can be
overridden in ``create(name, **overrides)``, and no other key is accepted.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

Builder = Callable[..., nn.Module]
REQUIRED_KEYS = ("num_classes", "in_channels")


class RegistryError(ValueError):
    """A mistake in using the registry: unknown name or key, duplicate name."""


class InputKind(str, Enum):
    """What a model's forward takes."""

    IMAGE = "image"
    IMAGE_TOKENS = "image+tokens"


@dataclass(frozen=True)
class ArchSpec:
    """Everything the harness needs to know about one registered architecture.

    ``input_shape`` is the image's (C, H, W) at batch 1. For ``IMAGE_TOKENS``
    models the forward also takes int64 token ids of shape (B, ``token_length``)
    below the config's ``vocab_size``.
    """

    name: str
    family: str
    paper: str
    builder: Builder = field(repr=False)
    defaults: Mapping[str, Any]
    input_kind: InputKind = InputKind.IMAGE
    input_shape: tuple[int, int, int] = (3, 32, 32)
    token_length: int | None = None

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The full config for a build: the defaults updated by valid overrides."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise RegistryError(
                f"{self.name} has no config key {', '.join(map(repr, unknown))}; "
                f"valid keys: {', '.join(sorted(self.defaults))}"
            )
        return {**self.defaults, **overrides}

    def example_inputs(
        self,
        batch_size: int = 1,
        *,
        image_size: int | None = None,
        device: torch.device | str = "cpu",
        **overrides: Any,
    ) -> tuple[torch.Tensor, ...]:
        """Random inputs for ``create(name, **overrides)``: images of the default
        size or ``image_size`` square, and token ids for image+tokens models."""
        config = self.config(**overrides)
        _, height, width = self.input_shape
        if image_size is not None:
            height = width = image_size
        image = torch.randn(batch_size, config["in_channels"], height, width, device=device)
        if self.input_kind is InputKind.IMAGE:
            return (image,)
        tokens = torch.randint(config["vocab_size"], (batch_size, self.token_length), device=device)
        return image, tokens


@dataclass(frozen=True)
class ExternalSource:
    """Models of another library, named ``prefix:NAME``, resolved on demand."""

    resolve: Callable[[str], ArchSpec]
    names: Callable[[], list[str]]


_REGISTRY: dict[str, ArchSpec] = {}
_EXTERNAL: dict[str, ExternalSource] = {}


def register(
    name: str,
    *,
    family: str,
    paper: str,
    input_kind: InputKind = InputKind.IMAGE,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    token_length: int | None = None,
    **defaults: Any,
) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name``, with ``defaults`` fixing this variant.

    Used as a decorator, or called on an existing class for each variant of it.
    """

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise RegistryError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = make_spec(
            name,
            builder,
            family=family,
            paper=paper,
            input_kind=input_kind,
            input_shape=input_shape,
            token_length=token_length,
            defaults=defaults,
        )
        return builder

    return decorator


def make_spec(
    name: str, builder: Builder, *, defaults: Mapping[str, Any], **fields: Any
) -> ArchSpec:
    """An ArchSpec whose config is the builder's keyword defaults updated by ``defaults``."""
    signature_defaults = _keyword_defaults(builder)
    missing = [key for key in REQUIRED_KEYS if key not in signature_defaults]
    if missing:
        raise RegistryError(f"builder of {name!r} must take keyword arguments {missing}")
    unknown = sorted(set(defaults) - set(signature_defaults))
    if unknown:
        raise RegistryError(f"builder of {name!r} takes no argument {', '.join(unknown)}")
    config = MappingProxyType({**signature_defaults, **defaults})
    if fields.get("input_kind") is InputKind.IMAGE_TOKENS and (
        not fields.get("token_length") or "vocab_size" not in config
    ):
        raise RegistryError(f"{name!r} takes token ids: give token_length and a vocab_size key")
    return ArchSpec(name=name, builder=builder, defaults=config, **fields)


def _keyword_defaults(builder: Builder) -> dict[str, Any]:
    """The builder's parameters that can be passed by keyword, with their defaults.

    A class whose ``__init__`` takes ``**kwargs`` passes them on to its base
    class: the base's keyword parameters are then the class's too.
    """
    parameters = inspect.signature(builder).parameters.values()
    defaults = {
        p.name: p.default
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty
    }
    passes_on = any(p.kind is p.VAR_KEYWORD for p in parameters)
    if passes_on and inspect.isclass(builder) and builder.__bases__[0] is not nn.Module:
        defaults = {**_keyword_defaults(builder.__bases__[0]), **defaults}
    return defaults


def register_external(prefix: str, source: ExternalSource) -> None:
    """Resolve names ``prefix:NAME`` through ``source`` (e.g. torchvision models)."""
    _EXTERNAL[prefix] = source


def spec(name: str) -> ArchSpec:
    """The ArchSpec of a registered name, or of an external ``prefix:NAME``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, external_name = name.partition(":")
    if sep and prefix in _EXTERNAL:
        return _EXTERNAL[prefix].resolve(external_name)
    raise RegistryError(unknown_name_message(name, list(_REGISTRY), kind="architecture"))


def unknown_name_message(
    name: str, known: list[str], *, kind: str, see: str = "see `archbench list`"
) -> str:
    """One line saying ``name`` is unknown, naming the closest known names."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} ({see})"


def create(name: str, **overrides: Any) -> nn.Module:
    """Build the architecture ``name`` with its default config updated by ``overrides``."""
    arch = spec(name)
    return arch.builder(**arch.config(**overrides))


def list_architectures(pattern: str | None = None, *, external: bool = False) -> list[str]:
    """Registered names, sorted, filtered by a shell-style wildcard pattern.

    A pattern without wildcards matches as a substring. External models
    (``torchvision:NAME``, ``timm:NAME``) are listed only with ``external=True``.
    """
    names = list(_REGISTRY)
    if external:
        names += [f"{prefix}:{name}" for prefix, src in _EXTERNAL.items() for name in src.names()]
    if pattern is not None:
        if not any(char in pattern for char in "*?["):
            pattern = f"*{pattern}*"
        names = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    return sorted(names)
