"""Weight selection: shrink by choosing layers and evenly spaced elements of a larger model.

Paper: "Initializing Models with Larger Ones" (Xu et al., ICLR 2024). Training-free and
shrink-only. Along every resizable axis the target keeps the elements at the rounded evenly
spaced positions ``round(linspace(0, n - 1, m))`` (every k-th element when the ratio is whole);
the same positions are used by every tensor, so the kept hidden units, heads and MLP units line
up across the whole network. Layers are chosen the same way (``layers="uniform"``) or as the
first ``m`` blocks (``layers="first"``, the paper's choice for isotropic models).

Rescaling: none by default — the selected weights are used as they are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from ..errors import LearngeneConfigError
from .base import Resizer

LAYER_CHOICES = ("first", "uniform")


@lru_cache(maxsize=128)
def selection_matrix(source_length: int, target_length: int, first: bool = False) -> torch.Tensor:
    """The (target × source) 0/1 matrix picking evenly spaced (or the first) source elements."""
    if first:
        picked = torch.arange(target_length)
    else:
        picked = torch.linspace(0, source_length - 1, target_length).round().long()
    matrix = torch.zeros(target_length, source_length, dtype=torch.float64)
    matrix[torch.arange(target_length), picked] = 1.0
    return matrix


class WeightSelectionResizer(Resizer):
    name = "weight_selection"
    default_rescaling = "none"

    def __init__(self, layers: str = "first"):
        if layers not in LAYER_CHOICES:
            raise LearngeneConfigError(f"weight_selection layers must be one of {LAYER_CHOICES}, got {layers!r}")
        self.layers = layers

    def options(self) -> dict[str, Any]:
        return {"layers": self.layers}

    def check(self, spec, source_shape, target_shape):
        for name, free, n, m in zip(spec.axes, spec.resizable, source_shape, target_shape):
            if free and m > n:
                raise LearngeneConfigError(
                    f"weight_selection only shrinks: the {name} axis would grow from {n} to {m}; "
                    "use front, bot, hypercloning (width) or stack (depth) to grow"
                )

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        first = spec.axes[axis] == "layers" and self.layers == "first"
        return selection_matrix(stored_length, target_length, first)
