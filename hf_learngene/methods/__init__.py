"""Resizing methods, one module each, behind the :class:`Resizer` interface."""

from __future__ import annotations

from typing import Any

from ..errors import LearngeneConfigError
from .base import Resizer, SignalSpec
from .bot import BotResizer
from .front import FrontResizer
from .hypercloning import HyperCloningResizer
from .random_init import RandomInitResizer
from .rescaling import RESCALING_POLICIES
from .stack import StackResizer
from .weight_selection import WeightSelectionResizer

METHODS: dict[str, type[Resizer]] = {
    cls.name: cls
    for cls in (
        FrontResizer,
        BotResizer,
        # peers, for comparison in the same harness
        WeightSelectionResizer,
        HyperCloningResizer,
        StackResizer,
        RandomInitResizer,
    )
}


def get_method(name: str, **options: Any) -> Resizer:
    """An instance of the method called ``name`` with its options."""
    if name not in METHODS:
        raise LearngeneConfigError(f"unknown learngene method '{name}'; choose one of {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as error:  # an option the method does not have
        raise LearngeneConfigError(f"bad option for method '{name}': {error}") from None


__all__ = ["METHODS", "RESCALING_POLICIES", "Resizer", "SignalSpec", "get_method"]
