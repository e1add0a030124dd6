"""BoT: bidirectional transfer by discrete wavelets (PyWavelets, ``periodization`` mode).

Shrinking an axis keeps the approximation band of a wavelet decomposition, one level per
halving; growing inverts with zero detail bands, one level per doubling. Both are
parameter-free, and shrink-after-grow returns the original. With Haar, one shrink level is
the mean of adjacent pairs and one grow level repeats every entry (a 2-D grow of a matrix is
``kron(W, ones(2, 2))`` before rescaling).

Paper: "A Unified Framework for Knowledge Transfer in Bidirectional Model Scaling" (Shen,
Feng, Xu et al., CVPR 2026). No public code; the choices below are ours.

Non-power-of-two ratios (a documented scheme, never a refusal): with ``k = ceil(log2(ratio))``
levels, a shrink ``n → m`` first resamples the axis linearly to ``m·2^k`` (≥ n) and then takes
``k`` approximation levels; a grow ``n → m`` takes ``k`` inverse levels to ``n·2^k`` (≥ m) and
then resamples linearly down to ``m``. The wavelet does the dyadic part; linear resampling only
covers the remaining factor below 2.

Every level is normalised by ``1/sqrt(2)`` (the lowpass gain of an orthogonal wavelet), so a
constant signal keeps its value, as for every method (see :mod:`.base`).

Options:
    wavelet: any discrete orthogonal wavelet PyWavelets knows (default ``"haar"``).
    levels: decomposition levels applied to every resizable axis before storing (default 0:
        the learngene keeps the source signal; each level halves the stored size).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from ..errors import LearngeneConfigError
from .base import Resizer, apply_along


def _linear_resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """Resample the rows of a 2-D tensor linearly to ``length`` columns (end points kept)."""
    if x.shape[-1] == length:
        return x
    return F.interpolate(x[None], size=length, mode="linear", align_corners=True)[0]


def _levels_for(ratio: float) -> int:
    return max(0, math.ceil(math.log2(ratio) - 1e-9))


@lru_cache(maxsize=128)
def resize_matrix(wavelet: str, source_length: int, target_length: int) -> torch.Tensor:
    """The (target × source) linear operator of one axis resize, in float64.

    Every step of the scheme is linear, so it is computed once by running PyWavelets on the
    identity and then applied to any tensor as a matrix product (much faster than calling
    PyWavelets on every fibre, and identical in value).
    """
    basis = np.eye(source_length)  # row i is the i-th unit signal
    if target_length < source_length:
        levels = _levels_for(source_length / target_length)
        x = _linear_resample(torch.from_numpy(basis), target_length * 2**levels).numpy()
        for _ in range(levels):
            x = pywt.dwt(x, wavelet, mode="periodization", axis=-1)[0] / math.sqrt(2.0)
    else:
        levels = _levels_for(target_length / source_length)
        x = basis
        for _ in range(levels):
            x = pywt.idwt(x * math.sqrt(2.0), None, wavelet, mode="periodization", axis=-1)
        x = _linear_resample(torch.from_numpy(np.ascontiguousarray(x)), target_length).numpy()
    return torch.from_numpy(np.ascontiguousarray(x.T))


class BotResizer(Resizer):
    name = "bot"

    def __init__(self, wavelet: str = "haar", levels: int = 0):
        try:
            self._wavelet = pywt.Wavelet(wavelet)
        except ValueError:
            raise LearngeneConfigError(
                f"unknown wavelet '{wavelet}'; choose a discrete wavelet from pywt.wavelist(kind='discrete'), "
                "e.g. haar, db2, sym4"
            ) from None
        if not self._wavelet.orthogonal:
            raise LearngeneConfigError(f"wavelet '{wavelet}' is not orthogonal; BoT needs an orthogonal wavelet (haar, dbN, symN)")
        if not isinstance(levels, int) or levels < 0:
            raise LearngeneConfigError(f"levels must be a non-negative integer, got {levels!r}")
        self.wavelet = wavelet
        self.levels = levels

    def options(self) -> dict[str, Any]:
        return {"wavelet": self.wavelet, "levels": self.levels}

    def stored_shape(self, spec, source_shape):
        return tuple(
            max(1, math.ceil(n / 2**self.levels)) if free else n for n, free in zip(source_shape, spec.resizable)
        )

    def encode(self, signal, spec):
        stored = self.stored_shape(spec, signal.shape)
        out = signal
        for axis, free in enumerate(spec.resizable):
            operator = self.axis_operator(spec, axis, signal.shape[axis], signal.shape[axis], stored[axis])
            if free and operator is not None:
                out = apply_along(out, axis, operator)
        return out

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        return None if stored_length == target_length else resize_matrix(self.wavelet, stored_length, target_length)
