"""Your own models, by name: ``path/to/file.py:factory`` or ``package.module:factory``,
and installed plug-ins that register theirs (entry-point group ``archbench.architectures``).

A factory is a class or function that returns an ``nn.Module`` and, like every
builder of the registry, takes ``num_classes`` and ``in_channels`` as keyword
arguments with defaults (the harness fits them to a data set); its other keyword
arguments are its config (``--arch`` entries in suite files may override them).
It is measured at 3x32x32 unless it says otherwise in an ``input_shape`` attribute
(or ``--input-size``). A plug-in's entry point names a module, imported for the
``register(...)`` calls it makes, or a function, called to make them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
from pathlib import Path
from types import ModuleType

from ._registry import ArchSpec, Family, RegistryError, make_spec

PLUGIN_GROUP = "archbench.architectures"
DEFAULT_SHAPE = (3, 32, 32)
log = logging.getLogger(__name__)


def user_spec(name: str) -> ArchSpec:
    """The ArchSpec of ``WHERE:FACTORY``, WHERE a .py file or an importable module."""
    where, _, attribute = name.rpartition(":")
    factory = getattr(load_module(where), attribute, None)
    if not callable(factory):
        raise RegistryError(f"{where} has no model factory {attribute!r}")
    return make_spec(
        name,
        factory,
        family=Family.OTHER,
        paper=f"user model {name}",
        input_shape=tuple(getattr(factory, "input_shape", DEFAULT_SHAPE)),
        defaults={},
    )


@functools.cache
def load_module(where: str) -> ModuleType:
    """A .py file's module (loaded once), or an importable module; RegistryError else."""
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise RegistryError(f"no model file {where}")
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        spec = importlib.util.spec_from_file_location(f"archbench_user_{path.stem}_{digest}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as error:
        raise RegistryError(f"cannot import {where!r} for a model: {error}") from None


def load_plugins() -> None:
    """Import (or call) every installed plug-in of PLUGIN_GROUP; one that fails is a
    warning, not a broken registry."""
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            loaded = entry.load()
            if callable(loaded):
                loaded()
        except Exception as error:  # a plug-in's own bug must not stop the harness
            log.warning("archbench plug-in %s (%s) failed: %s", entry.name, entry.value, error)
