"""An enum of text values that reads as its value: str(Family.RESNET) == 'resnet'."""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """Members are their value's text: in f-strings, in JSON and CSV, equal to the text."""

    def __str__(self) -> str:
        return str(self.value)
