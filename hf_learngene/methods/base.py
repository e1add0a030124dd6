"""The interface every resizing method implements.

A method sees one stacked role tensor at a time as a signal on named axes (the layer axis
included) and knows nothing of architectures. ``encode`` turns a source signal into what the
learngene stores; ``decode`` turns that into a signal of any target shape. Both act only on
the axes marked resizable; every other axis passes through untouched.

Convention shared by all methods: resizing is a resampling — a constant signal keeps its
value whatever the target size. How the amplitude of the result is then set is the separate
rescaling policy (:mod:`hf_learngene.methods.rescaling`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import torch

from ..errors import LearngeneConfigError


class Resizer(ABC):
    """One learngene method. Subclasses set ``name`` and implement ``encode`` and ``decode``."""

    name: ClassVar[str]

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The method's options as JSON-serialisable values, saved in the learngene's config."""

    @abstractmethod
    def stored_shape(self, source_shape: Sequence[int], axes: Sequence[str], resizable: Sequence[bool]) -> tuple[int, ...]:
        """The shape ``encode`` produces for a signal of ``source_shape``."""

    @abstractmethod
    def encode(self, signal: torch.Tensor, axes: Sequence[str], resizable: Sequence[bool]) -> torch.Tensor:
        """Source signal → stored learngene tensor."""

    @abstractmethod
    def decode(
        self, stored: torch.Tensor, source_shape: Sequence[int], target_shape: Sequence[int], resizable: Sequence[bool]
    ) -> torch.Tensor:
        """Stored learngene tensor → signal of ``target_shape``."""


def apply_along(x: torch.Tensor, axis: int, matrix: torch.Tensor) -> torch.Tensor:
    """Multiply every 1-D fibre of ``x`` along ``axis`` by ``matrix`` (out_len × in_len)."""
    moved = x.movedim(axis, -1)
    return (moved @ matrix.T.to(moved.dtype)).movedim(-1, axis)


def check_fixed_axes(source_shape: Sequence[int], target_shape: Sequence[int], resizable: Sequence[bool]) -> None:
    for axis, (n, m, free) in enumerate(zip(source_shape, target_shape, resizable)):
        if not free and n != m:
            raise LearngeneConfigError(f"axis {axis} is carried over unchanged (size {n}) but the target asks for {m}")
