"""The architecture registry: name -> ArchSpec -> nn.Module.

An architecture is registered once, under the name of one variant, with the
builder that makes it and the keyword defaults that distinguish this variant::

    register("resnet20", family=Family.RESNET, paper=HE_2016, depth=20)(cifar_resnet)

The builder's keyword parameters are the variant's config: every one can be
overridden in ``create(name, **overrides)``, and no other key is accepted.
What the analysis needs to know about a net beyond its config is declared, not
parsed from its name: its ``family`` (a closed set, in presentation order) and
its ``relations`` (its depth in a depth series, and the twin it derives from
with what changed).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import json
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from ._enum import TextEnum

Builder = Callable[..., nn.Module]
REQUIRED_KEYS = ("num_classes",)


KINDS: tuple[tuple[Any, str], ...] = (
    (bool, "true or false"),
    (numbers.Integral, "an integer"),
    (numbers.Real, "a number"),
    (str, "a string"),
    ((tuple, list), "a list"),
)


def kind_of(value: Any) -> tuple[Any, str] | None:
    """The kind of a config value (its types, in words) as KINDS lists them."""
    return next((kind for kind in KINDS if isinstance(value, kind[0])), None)


def of_kind(value: Any, kind: tuple[Any, str]) -> bool:
    """Whether a config value is of ``kind`` (an integer is a number too, a bool is
    neither)."""
    return isinstance(value, kind[0]) and (kind[0] is bool or not isinstance(value, bool))


def value_text(value: Any) -> str:
    """A config value as a suite file writes it: 20, "abc", [1, 2]."""
    return json.dumps(value, default=str)


class RegistryError(ValueError):
    """A mistake in using the registry: unknown name or key, duplicate name."""


class Family(TextEnum):
    """The families of the zoo, in the order they are presented (one question each);
    ``OTHER``: models from outside the zoo (torchvision:, timm:, a user's own)."""

    PLAIN = "plain"
    RESNET = "resnet"
    DENSENET = "densenet"
    GROUPED = "grouped"
    SEPARABLE = "separable"
    WIDE = "wide"
    FUSION = "fusion"
    OTHER = "other"

    @property
    def rank(self) -> int:
        """Position in the presentation order."""
        return list(Family).index(self)

    @classmethod
    def parse(cls, value: object) -> Family:
        """The family named ``value``; names outside the zoo's ('torchvision', written by
        older versions) are OTHER."""
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER


class Change(TextEnum):
    """What a net changes in the twin it is derived from."""

    RESIDUAL = "residual"  # adds shortcut connections
    GROUPS = "groups"  # splits its 3x3 convolutions into groups
    SEPARABLE = "separable"  # makes its 3x3 convolutions depthwise-separable
    ATTENTION = "attention"  # fuses image and question by cross-modal attention


@dataclass(frozen=True)
class Relations:
    """How a net relates to others, for the claims: ``depth`` places it in a depth series
    (He et al.'s 6n+2 CIFAR nets); ``widen`` is a wide net's widening factor (Zagoruyko &
    Komodakis' k); ``twin`` is the net it is derived from by ``change``, everything else
    equal."""

    depth: int | None = None
    twin: str | None = None
    change: Change | None = None
    widen: int | None = None

    def __post_init__(self) -> None:
        if (self.twin is None) != (self.change is None):
            raise RegistryError("a twin needs its change, and a change its twin")


NO_RELATIONS = Relations()

InputMaker = Callable[
    ["ArchSpec", int, tuple[int, ...], Mapping[str, Any], "torch.device | str"],
    tuple[torch.Tensor, ...],
]


@dataclass(frozen=True)
class InputKind:
    """What a model's forward takes: a name (the harness's task for it is looked up by
    it), the builder keys that size the inputs, and how to make a batch of random inputs
    (``make(spec, batch_size, sample_shape, config, device)``)."""

    name: str
    keys: tuple[str, ...]
    make: InputMaker = field(repr=False, compare=False)

    IMAGE: ClassVar[InputKind]
    IMAGE_TOKENS: ClassVar[InputKind]

    def __str__(self) -> str:
        return self.name


def _image_inputs(
    spec: ArchSpec,
    batch_size: int,
    shape: tuple[int, ...],
    config: Mapping[str, Any],
    device: torch.device | str,
) -> tuple[torch.Tensor, ...]:
    return (torch.randn(batch_size, *shape, device=device),)


def _image_token_inputs(
    spec: ArchSpec,
    batch_size: int,
    shape: tuple[int, ...],
    config: Mapping[str, Any],
    device: torch.device | str,
) -> tuple[torch.Tensor, ...]:
    image = torch.randn(batch_size, *shape, device=device)
    tokens = torch.randint(
        config["vocab_size"], (batch_size, spec.token_length or 1), device=device
    )
    return image, tokens


InputKind.IMAGE = InputKind("image", ("in_channels",), _image_inputs)
InputKind.IMAGE_TOKENS = InputKind(
    "image+tokens", ("in_channels", "vocab_size"), _image_token_inputs
)


@dataclass(frozen=True)
class ArchSpec:
    """Everything the harness needs to know about one registered architecture.

    ``input_shape`` is the first input's shape per sample: an image's (C, H, W),
    whose C is the config's ``in_channels``. For ``IMAGE_TOKENS`` models the
    forward also takes int64 token ids of shape (B, ``token_length``) below the
    config's ``vocab_size``.
    """

    name: str
    family: Family
    paper: str
    builder: Builder = field(repr=False)
    defaults: Mapping[str, Any]
    input_kind: InputKind = InputKind.IMAGE
    input_shape: tuple[int, ...] = (3, 32, 32)
    token_length: int | None = None
    relations: Relations = NO_RELATIONS
    native_input: bool = False  # timed at its own input and head even in a data set's suite

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The full config for a build: the defaults updated by valid overrides."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise RegistryError(
                f"{self.name} has no config key {', '.join(map(repr, unknown))}; "
                f"valid keys: {', '.join(sorted(self.defaults))}"
            )
        for key, value in overrides.items():
            default = self.defaults[key]
            kind = kind_of(default)  # None: the builder's to check
            if kind and not of_kind(value, kind):
                raise RegistryError(
                    f"{self.name}: config {key} = {value_text(value)}: expected "
                    f"{kind[1]} (its default is {value_text(default)})"
                )
        return {**self.defaults, **overrides}

    def validate(self, **overrides: Any) -> None:
        """Refuse ``overrides`` the builder refuses (a depth that is not 6n+2, a negative
        width), by building on the meta device: no memory, no arithmetic."""
        config = self.config(**overrides)
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zero-element tensors of a degenerate config
                self.builder(**config)
        except (ValueError, TypeError, RuntimeError) as error:
            given = ", ".join(f"{key} = {value_text(value)}" for key, value in overrides.items())
            raise RegistryError(f"{self.name} with config {given}: {error}") from None

    def sample_shape(
        self, config: Mapping[str, Any], image_size: int | None = None
    ) -> tuple[int, ...]:
        """The first input's shape per sample for ``config``: an image's channels are its
        ``in_channels``, its side ``image_size`` when given."""
        if "in_channels" not in config or len(self.input_shape) != 3:
            return self.input_shape
        _, height, width = self.input_shape
        if image_size is not None:
            height = width = image_size
        return (config["in_channels"], height, width)

    def example_inputs(
        self,
        batch_size: int = 1,
        *,
        image_size: int | None = None,
        shape: tuple[int, ...] | None = None,
        device: torch.device | str = "cpu",
        **overrides: Any,
    ) -> tuple[torch.Tensor, ...]:
        """Random inputs for ``create(name, **overrides)``: of the sample ``shape`` (default:
        ``sample_shape``, its images ``image_size`` square), token ids too for image+tokens."""
        config = self.config(**overrides)
        sample = shape or self.sample_shape(config, image_size)
        return self.input_kind.make(self, batch_size, sample, config, device)


@dataclass(frozen=True)
class ExternalSource:
    """Models of another library, named ``prefix:NAME``, resolved on demand."""

    resolve: Callable[[str], ArchSpec]
    names: Callable[[], list[str]]


_REGISTRY: dict[str, ArchSpec] = {}
_EXTERNAL: dict[str, ExternalSource] = {}
_ON_IMPORT: set[str] = set()  # the names importing the package registers


def mark_registered_on_import() -> None:
    """Remember the names registered so far: those importing the package registers (its
    families and installed plug-ins), which a new process knows too."""
    _ON_IMPORT.update(_REGISTRY)


def known_on_import(name: str) -> bool:
    """Whether a new process that imports the package resolves ``name``: a name that
    importing it registers, or one resolved on demand (``prefix:NAME``,
    ``file.py:factory``); not one registered at run time (``register`` in a script)."""
    return name in _ON_IMPORT or name not in _REGISTRY


def register(
    name: str,
    *,
    family: Family | str,
    paper: str,
    input_kind: InputKind = InputKind.IMAGE,
    input_shape: tuple[int, ...] = (3, 32, 32),
    token_length: int | None = None,
    relations: Relations = NO_RELATIONS,
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
            relations=relations,
            defaults=defaults,
        )
        return builder

    return decorator


def make_spec(
    name: str,
    builder: Builder,
    *,
    family: Family | str,
    input_kind: InputKind = InputKind.IMAGE,
    defaults: Mapping[str, Any],
    **fields: Any,
) -> ArchSpec:
    """An ArchSpec whose config is the builder's keyword defaults updated by ``defaults``."""
    try:
        family = Family(family)
    except ValueError:
        raise RegistryError(
            f"{name!r}: unknown family {family!r}; choose from {', '.join(map(str, Family))}"
        ) from None
    signature_defaults = _keyword_defaults(builder)
    missing = [key for key in (*REQUIRED_KEYS, *input_kind.keys) if key not in signature_defaults]
    if missing:
        raise RegistryError(f"builder of {name!r} must take keyword arguments {missing}")
    unknown = sorted(set(defaults) - set(signature_defaults))
    if unknown:
        raise RegistryError(f"builder of {name!r} takes no argument {', '.join(unknown)}")
    config = MappingProxyType({**signature_defaults, **defaults})
    if input_kind is InputKind.IMAGE_TOKENS and not fields.get("token_length"):
        raise RegistryError(f"{name!r} takes token ids: give its token_length")
    return ArchSpec(
        name=name,
        builder=builder,
        family=family,
        input_kind=input_kind,
        defaults=config,
        **fields,
    )


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
    if sep:  # path/to/file.py:factory or package.module:factory
        from .user import user_spec

        return user_spec(name)
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
