"""HyperCloning: grow width by integer factors so the grown model computes the same function.

Paper: "Scaling Smart: Accelerating Large Language Model Pre-Training with Small Model
Initialization" (Samragh et al., 2024). Every hidden vector of the grown model is the source's
repeated ``k`` times (``[h, h, …]``): weights are tiled along their output axes and tiled and
divided by ``k`` along their input axes, so each output is exactly the source's. Heads are
multiplied with the head size kept, MLP units likewise. Optional Gaussian noise at a given
signal-to-noise ratio breaks the symmetry between the copies.

What it cannot do, it refuses: depth changes, head-size changes, shrinking, and ratios that are
not whole numbers. A tied output embedding sees the repeated hidden vector, so its logits are
``k`` times the source's (the paper unties or rescales the head; this method leaves ties as they
are). Rescaling: none by default (the scale is part of the construction).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from ..errors import LearngeneConfigError
from .base import Resizer

WIDTH_AXES = frozenset({"hidden", "heads", "kv_heads", "intermediate"})


@lru_cache(maxsize=128)
def tiling_matrix(source_length: int, target_length: int) -> torch.Tensor:
    """The (target × source) matrix that repeats a vector ``target/source`` times."""
    matrix = torch.zeros(target_length, source_length, dtype=torch.float64)
    matrix[torch.arange(target_length), torch.arange(target_length) % source_length] = 1.0
    return matrix


class HyperCloningResizer(Resizer):
    name = "hypercloning"
    default_rescaling = "none"

    def __init__(self, snr_db: float | None = None, seed: int = 0):
        if snr_db is not None and not isinstance(snr_db, (int, float)):
            raise LearngeneConfigError(f"snr_db must be a number (signal-to-noise ratio in dB) or None, got {snr_db!r}")
        self.snr_db = snr_db
        self.seed = seed

    def options(self) -> dict[str, Any]:
        return {"snr_db": self.snr_db, "seed": self.seed}

    def check(self, spec, source_shape, target_shape):
        for name, free, n, m in zip(spec.axes, spec.resizable, source_shape, target_shape):
            if not free or n == m:
                continue
            if name not in WIDTH_AXES:
                raise LearngeneConfigError(
                    f"hypercloning grows width only; it cannot change the {name} axis ({n} → {m}). "
                    "Keep the source's depth and head size, or use front, bot or stack"
                )
            if m < n or m % n:
                raise LearngeneConfigError(
                    f"hypercloning grows by whole factors only: {name} {n} → {m} is {m / n:g}×; "
                    "choose a multiple of the source size, or use front or bot"
                )

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        tiling = tiling_matrix(stored_length, target_length)
        return tiling * (stored_length / target_length) if spec.inputs[axis] else tiling

    def decode(self, stored, spec, source_shape, target_shape):
        out = super().decode(stored, spec, source_shape, target_shape)
        if self.snr_db is None or tuple(target_shape) == tuple(source_shape):
            return out
        generator = torch.Generator().manual_seed(self.seed + out.numel())
        noise_std = out.double().pow(2).mean().sqrt().item() * 10 ** (-self.snr_db / 20)
        return out + torch.randn(out.shape, generator=generator, dtype=out.dtype) * noise_std
