"""Partial updates: a field that was absent from a PATCH body is ``UNSET`` (unchanged), not None."""

from __future__ import annotations

from enum import Enum
from typing import Final, TypeAlias, TypeVar, Union

T = TypeVar("T")


class Unset(Enum):
    UNSET = "unset"


UNSET: Final = Unset.UNSET

Maybe: TypeAlias = Union[T, Unset]  # noqa: UP007  (Maybe[int]: a value, or UNSET = leave as it is)
