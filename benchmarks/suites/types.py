"""Strict type checks of a suite file's values against the dataclasses that declare them.

TOML gives typed values, so a suite is checked against the type hints of ``Suite``,
``Entry``, ``TrainConfig`` and ``TimingConfig`` (the declared schema) before anything is
built: a string where a bool belongs ("false" is true in Python), a bool where a number
belongs (``true`` is 1) or a float where an integer belongs is refused, not coerced.
Plain checks rather than a validation library: the hints are the schema, and these few
rules cover every type they use.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from benchmarks.errors import UserError


def check_fields(values: Mapping[str, Any], cls: type, where: str) -> None:
    """UserError for the first of ``values`` that does not fit its field's hint in
    ``cls`` (keys ``cls`` lacks are left to the caller): '{where}{key} = value:
    expected ...'."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key in hints and not fits(value, hints[key]):
            raise UserError(f"{where}{key} = {toml_text(value)}: expected {expected(hints[key])}")


def fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value is of the type ``hint`` (no coercion: an integer is a number,
    nothing else is converted)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:  # tuple[X, ...]: a TOML list of X
        return isinstance(value, list | tuple) and all(fits(item, args[0]) for item in value)
    if origin in (Mapping, dict) or dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    raise TypeError(f"no check for the type {hint!r}")


def expected(hint: Any) -> str:
    """What a value of ``hint`` looks like, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(expected(arg) for arg in args if arg is not type(None))
    if origin is tuple:
        return f"a list of {PLURALS[args[0]]}"
    if origin in (Mapping, dict) or dataclasses.is_dataclass(hint):
        return "a table"
    return WORDS[hint]


WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
PLURALS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def toml_text(value: Any) -> str:
    """A value as it reads in TOML: true, "false", [1, 2]."""
    return json.dumps(value, default=str)
