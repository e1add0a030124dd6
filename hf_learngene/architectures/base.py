"""The axis vocabulary and the shape of an architecture table.

A weight is treated as a signal on named axes. Each dimension of a parameter is written as
a product of axis names, e.g. ``"heads*head_dim"`` for the rows of a query projection or
``"3*heads*head_dim"`` for GPT-2's fused ``c_attn``. Parameters repeated in every block carry a
``{layer}`` placeholder and are stacked on a leading ``layers`` axis, so a method can resize
depth exactly as it resizes width.

Resizable axes change with the target size; every other axis (vocabulary rows, positions,
image channels, literal factors such as the 3 of a fused qkv) is carried over unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from ..errors import LearngeneConfigError

# Axes a method may resize. Everything else is carried over as it is.
RESIZABLE_AXES = frozenset(
    {"layers", "hidden", "heads", "kv_heads", "head_dim", "half_head_dim", "intermediate"}
)

# How each size field of a target request is described to users.
SIZE_FIELD_DOC = {
    "layers": "number of blocks",
    "hidden": "model width",
    "heads": "attention heads",
    "kv_heads": "key/value heads (grouped-query attention)",
    "intermediate": "MLP width",
}


@dataclass(frozen=True)
class Param:
    """One parameter role: its canonical name and what each of its dimensions means.

    ``fan_in`` is the index of the input dimension of a weight matrix (``1`` for
    ``nn.Linear``, ``0`` for GPT-2's transposed ``Conv1D``); ``None`` for vectors and embeddings.
    ``writes_residual`` marks the projections that write into the residual stream (attention
    and MLP outputs): zeroed, they turn their block into an identity.
    """

    name: str
    dims: tuple[str, ...]
    fan_in: int | None = None
    writes_residual: bool = False

    @property
    def layered(self) -> bool:
        return "{layer}" in self.name

    def factors(self) -> list[list[str]]:
        """Each dimension split into its axis names, e.g. ``[["heads", "head_dim"], ["hidden"]]``."""
        return [dim.split("*") for dim in self.dims]

    def axes(self) -> list[str]:
        """The flat list of axes of the stacked, expanded signal (``layers`` first if layered)."""
        flat = [axis for dim in self.factors() for axis in dim]
        return (["layers"] if self.layered else []) + flat

    def pattern(self) -> re.Pattern:
        return re.compile("^" + re.escape(self.name).replace(r"\{layer\}", r"(\d+)") + "$")


def linear(prefix: str, out_dims: str, in_dims: str, bias: bool = True, residual: bool = False) -> tuple[Param, ...]:
    """The roles of an ``nn.Linear`` (weight stored as out × in)."""
    weight = Param(f"{prefix}.weight", (out_dims, in_dims), fan_in=1, writes_residual=residual)
    return (weight, Param(f"{prefix}.bias", (out_dims,), writes_residual=residual)) if bias else (weight,)


def conv1d(prefix: str, in_dims: str, out_dims: str, residual: bool = False) -> tuple[Param, ...]:
    """The roles of GPT-2's ``Conv1D`` (weight stored transposed, as in × out)."""
    return (
        Param(f"{prefix}.weight", (in_dims, out_dims), fan_in=0, writes_residual=residual),
        Param(f"{prefix}.bias", (out_dims,), writes_residual=residual),
    )


def norm(prefix: str, bias: bool = True) -> tuple[Param, ...]:
    """The roles of a LayerNorm (or, without bias, an RMSNorm) over the hidden axis."""
    weight = Param(f"{prefix}.weight", ("hidden",))
    return (weight, Param(f"{prefix}.bias", ("hidden",))) if bias else (weight,)


def axis_size(axis: str, sizes: Mapping[str, int]) -> int:
    if axis.isdigit():
        return int(axis)
    try:
        return sizes[axis]
    except KeyError:  # a table names an axis its size function does not define
        raise LearngeneConfigError(f"axis '{axis}' has no size in {dict(sizes)}") from None


def expanded_shape(param: Param, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of the stacked signal, one entry per axis of ``param.axes()``."""
    return tuple(axis_size(axis, sizes) for axis in param.axes())


def tensor_shape(param: Param, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of one (per-layer) parameter tensor."""
    return tuple(math.prod(axis_size(a, sizes) for a in dim) for dim in param.factors())


def fan_in(param: Param, sizes: Mapping[str, int]) -> int | None:
    if param.fan_in is None:
        return None
    return tensor_shape(param, sizes)[param.fan_in]


@dataclass(frozen=True)
class SizeFields:
    """Which config attribute holds each resizable size of a family."""

    layers: str
    hidden: str
    heads: str
    intermediate: str
    kv_heads: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"layers": self.layers, "hidden": self.hidden, "heads": self.heads, "intermediate": self.intermediate}
        if self.kv_heads:
            out["kv_heads"] = self.kv_heads
        return out


@dataclass(frozen=True)
class Architecture:
    """A model family described as data: the parameter roles and how sizes come from a config.

    * ``params``: every parameter role a method resizes or carries.
    * ``fresh``: regular expressions of task heads that are always freshly initialised
      (a classifier whose label set belongs to the new task).
    * ``axis_sizes``: the size of every axis named in ``params`` for a given config.
    * ``carried_fields``: config fields that must stay as in the source (vocabulary, positions).
    * ``presets``: named target sizes, as config fields.
    """

    family: str
    model_types: tuple[str, ...]
    params: tuple[Param, ...]
    size_fields: SizeFields
    axis_sizes: Callable[[object], dict[str, int]]
    carried_fields: tuple[str, ...]
    presets: Mapping[str, Mapping[str, int]]
    fresh: tuple[str, ...] = ()

    def match(self, canonical_name: str) -> tuple[Param, int | None] | None:
        """The role of a canonical parameter name and, for layered roles, its layer index."""
        for param in self.params:
            found = param.pattern().match(canonical_name)
            if found:
                return param, int(found.group(1)) if param.layered else None
        return None

    def is_fresh(self, canonical_name: str) -> bool:
        return any(re.match(pattern, canonical_name) for pattern in self.fresh)
