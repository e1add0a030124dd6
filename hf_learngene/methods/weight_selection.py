"""Weight selection: shrink by choosing layers and evenly spaced elements of a larger model.

Paper: "Initializing Models with Larger Ones" (Xu et al., ICLR 2024). Training-free and
shrink-only. Along every resizable axis the target keeps the elements at the rounded evenly
spaced positions ``round(linspace(0, n - 1, m))`` (every k-th element when the ratio is whole);
the same positions are used by every tensor, so the kept hidden units, heads and MLP units line
up across the whole network. Layers are chosen the same way (``layers="uniform"``) or as the
first ``m`` blocks (``layers="first"``, the paper's choice for isotropic models).

A head's rows are elements of the weight's dimension like any other: as in the paper, the
adjacent ``heads`` and ``head_dim`` axes (``kv_heads`` likewise) are selected as one flat axis of
``heads × head_dim`` elements, so a target may have fewer, larger heads (12 × 32 → 4 × 64) as
long as the flat dimension does not grow. Axes split further (Llama's rotary halves) are
selected axis by axis.

Rescaling: none by default — the selected weights are used as they are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from ..errors import LearngeneConfigError
from .base import Resizer, SignalSpec

LAYER_CHOICES = ("first", "uniform")
FLAT_PAIRS = {("heads", "head_dim"), ("kv_heads", "head_dim")}


def merge_head_axes(spec: SignalSpec, *shapes):
    """``spec`` and ``shapes`` with every adjacent (heads, head_dim) pair merged into one flat axis."""
    axes, resizable, inputs, shapes = list(spec.axes), list(spec.resizable), list(spec.inputs), [list(s) for s in shapes]
    i = 0
    while i < len(axes) - 1:
        if (axes[i], axes[i + 1]) in FLAT_PAIRS and resizable[i] and resizable[i + 1]:
            axes[i : i + 2] = [f"{axes[i]}*{axes[i + 1]}"]
            resizable[i : i + 2] = [True]
            inputs[i : i + 2] = [inputs[i]]
            for shape in shapes:
                shape[i : i + 2] = [shape[i] * shape[i + 1]]
        i += 1
    merged = SignalSpec(tuple(axes), tuple(resizable), tuple(inputs), spec.writes_residual)
    return merged, [tuple(shape) for shape in shapes]


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

    def decode(self, stored, spec, source_shape, target_shape):
        flat_spec, (flat_source, flat_target) = merge_head_axes(spec, source_shape, target_shape)
        if flat_spec == spec:
            return super().decode(stored, spec, source_shape, target_shape)
        out = super().decode(stored.reshape(flat_source), flat_spec, flat_source, flat_target)
        return out.reshape(tuple(target_shape))

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        first = spec.axes[axis] == "layers" and self.layers == "first"
        return selection_matrix(stored_length, target_length, first)
