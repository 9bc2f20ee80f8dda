"""The architecture zoo: every model of the suite behind one registry.

    >>> import architectures
    >>> model = architectures.create("resnet20", num_classes=100)
    >>> architectures.spec("resnet20").family
    <Family.RESNET: 'resnet'>

Importing the package registers every family module below, and the architectures of
installed plug-ins; ``path/to/file.py:factory`` and ``module:factory`` name your own
models (see ``user``).
"""

from . import densenet, external, fusion, mobilenet, plain, resnet, resnext, wide  # noqa: F401  (they register)
from ._registry import (
    ArchSpec,
    Change,
    Family,
    InputKind,
    RegistryError,
    Relations,
    create,
    known_on_import,
    list_architectures,
    mark_registered_on_import,
    register,
    spec,
)
from .user import load_plugins

load_plugins()  # installed packages' own architectures (entry points archbench.architectures)
mark_registered_on_import()

__all__ = [
    "ArchSpec",
    "Change",
    "Family",
    "InputKind",
    "RegistryError",
    "Relations",
    "create",
    "known_on_import",
    "list_architectures",
    "register",
    "spec",
]
