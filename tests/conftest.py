"""Shared fixtures: a scratch registry and toy architectures registered in it."""

from __future__ import annotations

import pytest

import architectures
from architectures import _registry

from helpers import BrokenNet, NaNNet, TinyNet


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))


@pytest.fixture
def toy_architectures(scratch_registry):
    """tiny (works), broken (raises) and nan (non-finite output), registered for one test."""
    for name, builder in (("tiny", TinyNet), ("broken", BrokenNet), ("nan", NaNNet)):
        architectures.register(name, family="test", paper="none", input_shape=(3, 8, 8))(builder)
