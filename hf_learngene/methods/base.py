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
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from ..errors import LearngeneConfigError


@dataclass(frozen=True)
class SignalSpec:
    """What a method may know of one stacked role: its axes and which of them it may resize.

    * ``axes``: the axis names (``layers``, ``hidden``, ``heads``, ``head_dim``, ``vocab``, ...).
    * ``resizable``: per axis, whether it follows the target size (otherwise carried unchanged).
    * ``inputs``: per axis, whether it belongs to the weight's input (fan-in) dimension.
    * ``writes_residual``: the role projects into the residual stream (attention output, MLP
      output), so zeroing it makes its block an identity.
    """

    axes: tuple[str, ...]
    resizable: tuple[bool, ...]
    inputs: tuple[bool, ...]
    writes_residual: bool = False


class Resizer(ABC):
    """One learngene method: a linear operator per resizable axis, applied axis by axis.

    Subclasses set ``name`` and implement :meth:`axis_operator`; a method that stores something
    other than the source signal (FRONT's DCT coefficients, BoT's coarser bands) also overrides
    :meth:`encode` and :meth:`stored_shape`.
    """

    name: ClassVar[str]
    default_rescaling: ClassVar[str] = "auto"
    provides_weights: ClassVar[bool] = True  # False for the random-init baseline

    def options(self) -> dict[str, Any]:
        """The method's options as JSON-serialisable values, saved in the learngene's config."""
        return {}

    def stored_shape(self, spec: SignalSpec, source_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape :meth:`encode` produces for a signal of ``source_shape``."""
        return tuple(source_shape)

    def encode(self, signal: torch.Tensor, spec: SignalSpec) -> torch.Tensor:
        """Source signal → stored learngene tensor (by default the signal itself)."""
        return signal

    @abstractmethod
    def axis_operator(
        self, spec: SignalSpec, axis: int, stored_length: int, source_length: int, target_length: int
    ) -> torch.Tensor | None:
        """The (target × stored) matrix that resizes one axis, or ``None`` to leave it as it is."""

    def check(self, spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> None:
        """Refuse, with a clear message, a resize this method cannot do."""

    def decode(
        self, stored: torch.Tensor, spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]
    ) -> torch.Tensor:
        """Stored learngene tensor → signal of ``target_shape``."""
        check_fixed_axes(source_shape, target_shape, spec.resizable)
        self.check(spec, source_shape, target_shape)
        out = stored
        for axis, free in enumerate(spec.resizable):
            if free:
                operator = self.axis_operator(spec, axis, out.shape[axis], source_shape[axis], target_shape[axis])
                if operator is not None:
                    out = apply_along(out, axis, operator)
        return out


def apply_along(x: torch.Tensor, axis: int, matrix: torch.Tensor) -> torch.Tensor:
    """Multiply every 1-D fibre of ``x`` along ``axis`` by ``matrix`` (out_len × in_len)."""
    moved = x.movedim(axis, -1)
    return (moved @ matrix.T.to(device=moved.device, dtype=moved.dtype)).movedim(-1, axis)


def check_fixed_axes(source_shape: Sequence[int], target_shape: Sequence[int], resizable: Sequence[bool]) -> None:
    for axis, (n, m, free) in enumerate(zip(source_shape, target_shape, resizable)):
        if not free and n != m:
            raise LearngeneConfigError(f"axis {axis} is carried over unchanged (size {n}) but the target asks for {m}")
