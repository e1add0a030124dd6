"""FRONT: a learngene in the frequency domain (orthonormal DCT-II).

Along every resizable axis (layers included) the signal is taken to the DCT domain and only
the low-frequency block is stored. Building a model of another size keeps the first
``min(stored, target)`` coefficients, zero-pads the rest and inverts at the target length.
Truncating after padding returns the original, and at the source size with everything kept
the transform is the identity.

Paper: "One-for-All Model Initialization with Frequency-Domain Knowledge" (Shen, Feng, Xie
et al., ICML 2026). The authors z-score each tensor and restore its statistics afterwards;
that step is the shared rescaling policy here.

Options:
    keep: how many coefficients the learngene stores per resizable axis — a float ratio of
        the source size for every axis (default ``1.0``: lossless), or a dict mapping axis
        names (``"layers"``, ``"hidden"``, ``"heads"``, ``"head_dim"``, ``"intermediate"``, ...)
        to a ratio (float) or an absolute count (int). Unnamed axes keep everything.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Mapping, Union

import torch

from ..errors import LearngeneConfigError
from .base import Resizer, apply_along

Keep = Union[float, Mapping[str, Union[float, int]]]


@lru_cache(maxsize=64)
def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix of length ``n`` (rows are frequencies), in float64."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    matrix = torch.cos(math.pi * (2 * i[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def dct(x: torch.Tensor, axis: int, keep: int | None = None) -> torch.Tensor:
    """Orthonormal DCT-II along ``axis``, returning the first ``keep`` coefficients."""
    n = x.shape[axis]
    return apply_along(x, axis, dct_matrix(n)[: keep or n])


@lru_cache(maxsize=128)
def idct_basis(stored: int, source_length: int, target_length: int) -> torch.Tensor:
    """The (target × stored) inverse DCT at ``target_length`` of the first ``stored`` coefficients
    of a length-``source_length`` signal: surplus coefficients are dropped, missing ones are zeros.

    The factor ``sqrt(target/source)`` makes it a resampling: a constant keeps its value.
    """
    used = min(stored, target_length)
    basis = torch.zeros(target_length, stored, dtype=torch.float64)
    basis[:, :used] = dct_matrix(target_length)[:used].T * math.sqrt(target_length / source_length)
    return basis


class FrontResizer(Resizer):
    name = "front"

    def __init__(self, keep: Keep = 1.0):
        if isinstance(keep, Mapping):
            bad = {k: v for k, v in keep.items() if not isinstance(v, (int, float)) or v <= 0}
        else:
            bad = {} if isinstance(keep, (int, float)) and 0 < keep <= 1 else {"keep": keep}
        if bad:
            raise LearngeneConfigError(
                f"FRONT keep must be a ratio in (0, 1] or a dict of axis → ratio (float) or count (int); got {bad}"
            )
        self.keep = dict(keep) if isinstance(keep, Mapping) else float(keep)

    def options(self) -> dict[str, Any]:
        return {"keep": self.keep}

    def _kept(self, axis_name: str, length: int) -> int:
        rule = self.keep.get(axis_name, 1.0) if isinstance(self.keep, dict) else self.keep
        count = rule if isinstance(rule, int) and not isinstance(rule, bool) else math.ceil(rule * length)
        return max(1, min(length, count))

    def stored_shape(self, spec, source_shape):
        return tuple(
            self._kept(name, n) if free else n for n, name, free in zip(source_shape, spec.axes, spec.resizable)
        )

    def encode(self, signal, spec):
        out = signal
        for axis, (name, free) in enumerate(zip(spec.axes, spec.resizable)):
            if free:
                out = dct(out, axis, self._kept(name, signal.shape[axis]))
        return out

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        return idct_basis(stored_length, source_length, target_length)
