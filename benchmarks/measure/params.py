"""Parameter counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import architectures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamCount:
    total: int
    trainable: int


def count_parameters(model: nn.Module) -> ParamCount:
    """Total and trainable parameters; a parameter shared by two layers counts once."""
    params = list(model.parameters())  # Module.parameters() yields each tensor once
    return ParamCount(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
    )


def count_parameters_of(name: str, **overrides: Any) -> ParamCount:
    """Parameters of an architecture of the registry, without paying for its weights.

    The model is built on the meta device (no memory, no initialisation); a
    builder that computes with tensors while building (torchvision's RegNets)
    cannot be, and is built on the CPU instead.
    """
    try:
        with torch.device("meta"):
            return count_parameters(architectures.create(name, **overrides))
    except NotImplementedError:
        log.debug("%s cannot be built on the meta device; building it on the CPU", name)
        return count_parameters(architectures.create(name, **overrides))
