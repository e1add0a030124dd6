"""Depth stacking: grow depth by duplicating blocks.

As in mergekit's passthrough merges, SOLAR's depth up-scaling and G_stack ("Stacking Your
Transformers", Du et al., 2024). Target block ``j`` copies source block ``floor(j·n/m)``
(``order="interleave"``: 1 1 2 2 3 3, each block followed by its copies) or block ``j mod n``
(``order="repeat"``: 1 2 3 1 2 3, the whole stack again). With ``identity_copies=True`` the
output projections of every inserted copy are zeroed, so each copy starts as an identity and the
grown model computes the source's function (LLaMA Pro's construction).

Depth only: widths are left alone and changing them is refused. Rescaling: none by default.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import LearngeneConfigError
from .base import Gather, Resizer
from .hypercloning import WIDTH_AXES

from .options import ORDERS, StackOptions


def source_layers(source_length: int, target_length: int, order: str) -> torch.Tensor:
    """For every target block, the source block it copies."""
    target = torch.arange(target_length)
    return target % source_length if order == "repeat" else (target * source_length) // target_length


def inserted_copies(source_length: int, target_length: int, order: str) -> torch.Tensor:
    """Boolean mask of target blocks that are a second (or later) copy of their source block."""
    picked = source_layers(source_length, target_length, order)
    first_seen = torch.zeros(target_length, dtype=torch.bool)
    seen: set[int] = set()
    for j, i in enumerate(picked.tolist()):
        first_seen[j] = i not in seen
        seen.add(i)
    return ~first_seen


def _methods_resizing(axis: str, source_length: int, target_length: int) -> str:
    """The methods that can resize ``axis`` from ``source_length`` to ``target_length``, for an error
    message: FRONT and BoT any axis; weight selection only shrinks; HyperCloning grows the widths it
    knows (not the experts) by whole factors."""
    methods = ["front", "bot"]
    if target_length < source_length:
        methods.append("weight_selection")
    elif axis in WIDTH_AXES and target_length % source_length == 0:
        methods.append("hypercloning")
    return ", ".join(methods[:-1]) + " or " + methods[-1]


class StackResizer(Resizer):
    name = "stack"
    default_rescaling = "none"

    def __init__(self, order: str = StackOptions.order, identity_copies: bool = StackOptions.identity_copies):
        if order not in ORDERS:
            raise LearngeneConfigError(f"stack order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self.identity_copies = bool(identity_copies)

    def options(self) -> dict[str, Any]:
        return {"order": self.order, "identity_copies": self.identity_copies}

    def check(self, spec, source_shape, target_shape):
        for name, free, n, m in zip(spec.axes, spec.resizable, source_shape, target_shape):
            if free and n != m and name != "layers":
                raise LearngeneConfigError(
                    f"stack changes depth only; it cannot resize the {name} axis ({n} → {m}). "
                    f"Keep the source's widths, or use {_methods_resizing(name, n, m)}"
                )
            if name == "layers" and m < n:
                raise LearngeneConfigError(
                    f"stack only grows depth ({n} → {m} layers would drop blocks); use weight_selection, front or bot"
                )

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        return Gather(source_layers(stored_length, target_length, self.order), stored_length)

    def decode(self, stored, spec, source_shape, target_shape):
        out = super().decode(stored, spec, source_shape, target_shape)
        if self.identity_copies and spec.writes_residual and spec.axes and spec.axes[0] == "layers":
            out = out.clone()
            out[inserted_copies(source_shape[0], target_shape[0], self.order)] = 0.0
        return out
