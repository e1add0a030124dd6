"""The axis vocabulary and the shape of an architecture table.

A weight is treated as a signal on named axes. Each dimension of a parameter is written as
a product of axis names, e.g. ``"heads*head_dim"`` for the rows of a query projection or
``"3*heads*head_dim"`` for GPT-2's fused ``c_attn``. Parameters repeated in every block carry a
``{layer}`` placeholder and are stacked on a leading ``layers`` axis, so a method can resize
depth exactly as it resizes width.

Resizable axes change with the target size; every other axis (vocabulary rows, positions,
image channels, literal factors such as the 3 of a fused qkv) is carried over unchanged.

A dimension that concatenates two signals (a UNet up-block resnet reads its input and a skip
connection stacked on the channel axis) is described by one :class:`Segment` role per part, so
each part is resized on its own axes and the parts are concatenated again when a model is built.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from ..errors import LearngeneConfigError

# Axes a method may resize. Everything else is carried over as it is.
RESIZABLE_AXES = frozenset(
    {"layers", "hidden", "heads", "kv_heads", "head_dim", "half_head_dim", "intermediate", "time_embed"}
)
_BLOCK_CHANNELS = re.compile(r"^channels\d+$")  # a UNet's per-block widths: channels0, channels1, ...


def is_resizable(axis: str) -> bool:
    return axis in RESIZABLE_AXES or bool(_BLOCK_CHANNELS.match(axis))


# How each size field of a target request is described to users.
SIZE_FIELD_DOC = {
    "layers": "number of blocks",
    "hidden": "model width",
    "heads": "attention heads",
    "kv_heads": "key/value heads (grouped-query attention)",
    "intermediate": "MLP width",
}


@dataclass(frozen=True)
class Segment:
    """One part of a concatenated dimension: ``parts`` are every part's axes, in order."""

    dim: int
    parts: tuple[str, ...]
    index: int


@dataclass(frozen=True)
class Param:
    """One parameter role: its canonical name and what each of its dimensions means.

    ``fan_in`` is the index of the input dimension of a weight matrix (``1`` for
    ``nn.Linear``, ``0`` for GPT-2's transposed ``Conv1D``); ``None`` for vectors and embeddings.
    ``writes_residual`` marks the projections that write into the residual stream (attention
    and MLP outputs): zeroed, they turn their block into an identity. ``tied_output`` marks an
    input embedding that the output head shares (set by :meth:`Architecture.roles` when the
    config ties them). ``head_groups`` marks attention roles whose heads are whole units, with
    that many query heads per key/value head (see :class:`~hf_learngene.methods.SignalSpec`).
    """

    name: str
    dims: tuple[str, ...]
    fan_in: int | None = None
    writes_residual: bool = False
    segment: Segment | None = None
    tied_output: bool = False
    head_groups: int | None = None

    @property
    def role(self) -> str:
        """The learngene's key for this role: the tensor name, plus the part of a concatenated dimension."""
        return f"{self.name}#{self.segment.index}" if self.segment else self.name

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


def _dim_size(dim: str, sizes: Mapping[str, int]) -> int:
    return math.prod(axis_size(a, sizes) for a in dim.split("*"))


def tensor_shape(param: Param, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of the part of one (per-layer) parameter tensor this role covers."""
    return tuple(_dim_size(dim, sizes) for dim in param.dims)


def full_tensor_shape(param: Param, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of the whole (per-layer) parameter tensor, every part of a concatenation included."""
    shape = list(tensor_shape(param, sizes))
    if param.segment:
        shape[param.segment.dim] = sum(_dim_size(part, sizes) for part in param.segment.parts)
    return tuple(shape)


def segment_index(param: Param, sizes: Mapping[str, int]) -> tuple[slice, ...]:
    """The index of this role's part within the whole tensor (everything, for an unsegmented role)."""
    if not param.segment:
        return ()
    segment = param.segment
    start = sum(_dim_size(part, sizes) for part in segment.parts[: segment.index])
    stop = start + _dim_size(segment.parts[segment.index], sizes)
    return (slice(None),) * segment.dim + (slice(start, stop),)


def fan_in(param: Param, sizes: Mapping[str, int]) -> int | None:
    """The input width of the whole weight (all parts of a concatenated input counted)."""
    if param.fan_in is None:
        return None
    return full_tensor_shape(param, sizes)[param.fan_in]


def concatenated(param: Param, dim: int, parts: tuple[str, ...]) -> tuple[Param, ...]:
    """``param`` split into one role per part of its concatenated dimension ``dim``."""
    if len(parts) == 1:
        return (replace(param, dims=param.dims[:dim] + (parts[0],) + param.dims[dim + 1:]),)
    return tuple(
        replace(param, dims=param.dims[:dim] + (part,) + param.dims[dim + 1:], segment=Segment(dim, parts, index))
        for index, part in enumerate(parts)
    )


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
    * ``library``: ``"transformers"`` (configs are ``PretrainedConfig``) or ``"diffusers"``
      (``ConfigMixin`` models; ``model_types`` are then class names such as ``"UNet2DModel"``).
    * ``params_for``: for a family whose roles depend on the config (a UNet's block list, Llama's
      query heads per key/value head), the roles of one config; ``params`` is then empty.
    * ``size_aliases`` / ``check_size``: for diffusers families, the names a size request may
      use for config fields, and the validation of a target config (raising ``LearngeneConfigError``).
    * ``tied_embedding``: the input embedding role an output head shares when the config sets
      ``tie_word_embeddings`` (the untied head has a role of its own, with the hidden axis as fan-in).
    * ``tied_copies``: for each output-head role a tied source does not store, the role it shares
      (the head's weight: the word embeddings; BERT's decoder bias: ``cls.predictions.bias``), so a
      model built with ``tie_word_embeddings=False`` from a tied source gets every head tensor.
    """

    family: str
    model_types: tuple[str, ...]
    params: tuple[Param, ...]
    size_fields: SizeFields | None
    axis_sizes: Callable[[object], dict[str, int]]
    carried_fields: tuple[str, ...]
    presets: Mapping[str, Mapping[str, object]]
    fresh: tuple[str, ...] = ()
    library: str = "transformers"
    params_for: Callable[[object], tuple[Param, ...]] | None = None
    size_aliases: Mapping[str, str] = field(default_factory=dict)
    check_size: Callable[[dict], None] | None = None
    tied_embedding: str | None = None
    tied_copies: Mapping[str, str] = field(default_factory=dict)

    def roles(self, config) -> tuple[Param, ...]:
        """Every parameter role of a model with this config."""
        params = self.params_for(config) if self.params_for else self.params
        if self.tied_embedding and getattr(config, "tie_word_embeddings", False):
            params = tuple(replace(p, tied_output=True) if p.name == self.tied_embedding else p for p in params)
        return params

    def matches(self, canonical_name: str, config) -> list[tuple[Param, int | None]]:
        """The roles a canonical parameter name holds (several for a concatenated dimension),
        each with its layer index for layered roles."""
        found = []
        for param in self.roles(config):
            hit = param.pattern().match(canonical_name)
            if hit:
                found.append((param, int(hit.group(1)) if param.layered else None))
        return found

    def is_fresh(self, canonical_name: str) -> bool:
        return any(re.match(pattern, canonical_name) for pattern in self.fresh)
