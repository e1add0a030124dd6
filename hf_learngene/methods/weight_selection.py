"""Weight selection: shrink by choosing layers and evenly spaced elements of a larger model.

Paper: "Initializing Models with Larger Ones" (Xu et al., ICLR 2024). Training-free and
shrink-only. Along every resizable axis the target keeps every ``k``-th element
(``0, k, 2k, …`` with ``k = n / m``) when the ratio is whole, as the paper does, and the rounded
evenly spaced positions ``round(linspace(0, n - 1, m))`` otherwise. The same positions are used
by every tensor, so the kept hidden units, heads and MLP units line up across the whole network.
Layers are chosen the same way (``layers="uniform"``) or as the first ``m`` blocks
(``layers="first"``, the paper's choice for isotropic models).

Attention heads are selected in one of two ways, the same for every role of one model:

* As in the paper, the adjacent ``heads`` and ``head_dim`` axes (``kv_heads`` likewise) are one
  flat axis of ``heads × head_dim`` elements (BERT, GPT-2, ViT): q, k, v and the output
  projection all keep the same elements, and a target may have fewer, larger heads
  (12 × 32 → 4 × 64) as long as the flat dimension does not grow.
* Where heads are whole units (a role's ``head_groups`` is set: Llama's rotary halves and
  grouped-query attention), whole heads are selected, and within them the same head
  dimensions (per rotary half for q and k). Key/value heads are selected first; each target
  key/value head then takes query heads from the group of the source key/value head it was
  selected from, so every target query head keeps its source head's key/value head. The
  learngene stores a ``heads`` axis as (key/value heads × query heads per key/value head) for this.

Rescaling: none by default — the selected weights are used as they are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch

from ..errors import LearngeneConfigError
from .base import Gather, Resizer, SignalSpec, heads_by_kv_head, stored_head_groups

from .options import LAYER_CHOICES, WeightSelectionOptions
FLAT_PAIRS = {("heads", "head_dim"), ("kv_heads", "head_dim")}
GROUP_AXES = ("kv_heads", "heads_per_kv")  # a grouped ``heads`` axis, as the learngene stores it


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
    merged = replace(spec, axes=tuple(axes), resizable=tuple(resizable), inputs=tuple(inputs))
    return merged, [tuple(shape) for shape in shapes]


def split_heads_axis(spec: SignalSpec, axis: int, *shapes: tuple[Sequence[int], int]):
    """``spec`` with its ``heads`` axis split into (key/value heads, query heads per key/value
    head), and each ``(shape, heads_per_kv)`` split the same way."""
    grouped = replace(
        spec,
        axes=spec.axes[:axis] + GROUP_AXES + spec.axes[axis + 1 :],
        resizable=spec.resizable[:axis] + (True, True) + spec.resizable[axis + 1 :],
        inputs=spec.inputs[:axis] + (spec.inputs[axis],) * 2 + spec.inputs[axis + 1 :],
    )
    split = [tuple(shape[:axis]) + (shape[axis] // group, group) + tuple(shape[axis + 1 :]) for shape, group in shapes]
    return grouped, split


def selected_indices(source_length: int, target_length: int, first: bool = False) -> torch.Tensor:
    """The source positions a target of ``target_length`` keeps: the first ones, every k-th one
    at a whole ratio, or the rounded evenly spaced ones."""
    if first:
        return torch.arange(target_length)
    if source_length % target_length == 0:
        return torch.arange(0, source_length, source_length // target_length)
    return torch.linspace(0, source_length - 1, target_length).round().long()


class WeightSelectionResizer(Resizer):
    name = "weight_selection"
    default_rescaling = "none"

    def __init__(self, layers: str = WeightSelectionOptions.layers):
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

    def stored_shape(self, spec, source_shape):
        return heads_by_kv_head(spec, source_shape)

    def encode(self, signal, spec, *, overwrite=False):
        """The source signal; a grouped ``heads`` axis is stored split by key/value head, so that
        a build knows the source's grouping."""
        return signal.reshape(self.stored_shape(spec, signal.shape))

    def decode(self, stored, spec, source_shape, target_shape):
        if spec.head_groups is None:
            flat_spec, (flat_source, flat_target) = merge_head_axes(spec, source_shape, target_shape)
            if flat_spec == spec:
                return super().decode(stored, spec, source_shape, target_shape)
            out = super().decode(stored.reshape(flat_source), flat_spec, flat_source, flat_target)
            return out.reshape(tuple(target_shape))
        if "heads" not in spec.axes:  # key/value heads, or no heads at all: every axis on its own
            return super().decode(stored, spec, source_shape, target_shape)
        axis = spec.axes.index("heads")
        source_groups = stored_head_groups(stored, spec)
        if source_groups is None:  # stored before heads were grouped: take the target's grouping
            source_groups = spec.head_groups if source_shape[axis] % spec.head_groups == 0 else 1
        target_groups = spec.head_groups
        if target_groups > source_groups:
            heads = target_shape[axis]
            hint = f" (e.g. kv_heads={heads // source_groups})" if heads % source_groups == 0 else ""
            raise LearngeneConfigError(
                f"weight_selection keeps every query head with its own key/value head, so a target key/value head "
                f"can serve at most the {source_groups} query head(s) a source key/value head serves, not "
                f"{target_groups}; ask for more key/value heads{hint}"
            )
        grouped, (grouped_source, grouped_target) = split_heads_axis(
            spec, axis, (source_shape, source_groups), (target_shape, target_groups)
        )
        out = super().decode(stored.reshape(grouped_source), grouped, grouped_source, grouped_target)
        return out.reshape(tuple(target_shape))

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        first = spec.axes[axis] == "layers" and self.layers == "first"
        return Gather(selected_indices(stored_length, target_length, first), stored_length)
