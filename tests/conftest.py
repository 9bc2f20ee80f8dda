"""Shared fixtures: scratch registries (of architectures, of tasks) and toy
architectures registered in them."""

from __future__ import annotations

import pytest

import architectures
from architectures import Family, _registry
from benchmarks import schema, tasks

from helpers import BrokenNet, NaNNet, TinyNet


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))


@pytest.fixture
def scratch_tasks(monkeypatch):
    """Tasks a test registers, and the columns they declare, vanish after it."""
    monkeypatch.setattr(tasks, "_TASKS", dict(tasks._TASKS))
    monkeypatch.setattr(schema, "_DECLARED", dict(schema.declared()))


@pytest.fixture
def toy_architectures(scratch_registry):
    """tiny (works), broken (raises) and nan (non-finite output), registered for one test."""
    for name, builder in (("tiny", TinyNet), ("broken", BrokenNet), ("nan", NaNNet)):
        architectures.register(name, family=Family.OTHER, paper="none", input_shape=(3, 8, 8))(
            builder
        )
