"""The axis vocabulary and the shape of an architecture table.

A weight is treated as a signal on named axes. Each dimension of a parameter is written as
a product of axis names, e.g. ``"heads*head_dim"`` for the rows of a query projection or
``"3*heads*head_dim"`` for GPT-2's fused ``c_attn``. Parameters repeated in every block carry a
``{layer}`` placeholder and are stacked on a leading ``layers`` axis, so a method can resize
depth exactly as it resizes width.

Resizable axes change with the target size; every other axis (vocabulary rows, positions,
image channels, literal factors such as the 3 of a fused qkv) is carried over unchanged.

A dimension that concatenates two signals (a UNet up-block resnet reads its input and a skip
connection stacked on the channel axis; Phi-3's ``qkv_proj`` stacks q, k and v) is described by
one :class:`Segment` role per part, so each part is resized on its own axes and the parts are
concatenated again when a model is built.

A family is one :class:`Architecture`: its roles, and the mapping between its axis names and its
config fields, written once. The size fields a request may name, the fields carried over from
the source and the axis sizes of any config all follow from that mapping; the few things that do
not (a UNet's block list, GPT-2's ``n_inner=None``) are small hooks the table names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Mapping

from ..errors import LearngeneConfigError

# Axes a method may resize. Everything else is carried over as it is.
RESIZABLE_AXES = frozenset(
    {"layers", "hidden", "heads", "kv_heads", "head_dim", "half_head_dim", "rotary_unit", "intermediate",
     "time_embed", "experts"}
)
_BLOCK_CHANNELS = re.compile(r"^channels\d+$")  # a UNet's per-block widths: channels0, channels1, ...
# A size a request names as a list of per-level widths; the family's sizes hook expands it into
# the axes channels0, channels1, ... (or channels1, channels2, ... for PIPMN).
LEVEL_WIDTHS = "channels"
# In a dims string: one head's dimensions laid out for rotary embeddings (see :func:`rotary_layout`).
ROTARY = "{rotary}"


def is_resizable(axis: str) -> bool:
    return axis in RESIZABLE_AXES or bool(_BLOCK_CHANNELS.match(axis))


def is_size(axis: str) -> bool:
    """Whether a size request may name ``axis`` (a resizable axis, or the list of level widths)."""
    return is_resizable(axis) or axis == LEVEL_WIDTHS


# How each size of a target request is described to users.
SIZE_FIELD_DOC = {
    "layers": "number of blocks",
    "hidden": "model width",
    "heads": "attention heads",
    "kv_heads": "key/value heads (grouped-query attention)",
    "head_dim": "head size",
    "intermediate": "MLP width (per expert in a mixture of experts)",
    "experts": "experts per mixture-of-experts block",
    "channels": "width of every resolution level",
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
    ``nn.Linear``, ``0`` for GPT-2's transposed ``Conv1D``, ``2`` for a stack of experts);
    ``None`` for vectors and embeddings. ``writes_residual`` marks the projections that write into
    the residual stream (attention and MLP outputs): zeroed, they turn their block into an
    identity. ``tied_output`` marks an input embedding that the output head shares (set by
    :meth:`Architecture.roles` when the config ties them). ``whole_heads`` marks attention roles
    whose heads are whole units (rotary halves, grouped key/value heads); :meth:`Architecture.roles`
    then sets ``head_groups``, the query heads per key/value head of the config (see
    :class:`~hf_learngene.methods.SignalSpec`). ``scaled_by`` names the axis whose square root the
    model multiplies this role's output by (Gemma's embeddings are scaled by √hidden): a
    function-preserving build divides the role by the growth of that factor.

    ``attention_logits`` says, for the four projections of a scaled dot-product attention over
    flat heads (:func:`dot_product_attention`), whether the role is a query or key (``True``: the
    model divides their dot product over ``head_dim`` by √head_dim) or a value or output
    (``False``); ``None`` where a family does not say (fused or rotary projections, other roles).
    A function-preserving build whose head size grows multiplies queries and keys by
    ``(new/old)^(-1/4)`` each, so that the logits keep their value. ``attention_keys`` marks the
    keys among them: a build that copies head dimensions unevenly (BoT's ``split``) shares each key
    dimension's weight among its copies, so the dot product grows by exactly the head-size ratio.

    ``first_layer`` is the first layer a layered role's tensor exists in (ModernBERT's layer 0 has
    no attention norm): the role is still stacked over every layer, so that it follows a method's
    layer mapping like the layer's other roles, and the missing layers are stacked as ``identity``,
    the value that makes the role do nothing there (1 for a norm's weight, 0 for its bias). A
    target's layers before ``first_layer`` are decoded but not written.
    """

    name: str
    dims: tuple[str, ...]
    fan_in: int | None = None
    writes_residual: bool = False
    segment: Segment | None = None
    tied_output: bool = False
    head_groups: int | None = None
    whole_heads: bool = False
    scaled_by: str | None = None
    attention_logits: bool | None = None
    attention_keys: bool = False
    first_layer: int = 0
    identity: float = 0.0
    norm: str | None = None

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


def linear(
    prefix: str, out_dims: str, in_dims: str, bias: bool = True, residual: bool = False, whole_heads: bool = False,
    attention_logits: bool | None = None, attention_keys: bool = False,
) -> tuple[Param, ...]:
    """The roles of an ``nn.Linear`` (weight stored as out × in)."""
    flags = {"writes_residual": residual, "whole_heads": whole_heads, "attention_logits": attention_logits,
             "attention_keys": attention_keys}
    weight = Param(f"{prefix}.weight", (out_dims, in_dims), fan_in=1, **flags)
    bias_role = Param(f"{prefix}.bias", (out_dims,), **flags)
    return (weight, bias_role) if bias else (weight,)


def dot_product_attention(query: str, key: str, value: str, output: str) -> tuple[Param, ...]:
    """The four ``nn.Linear`` projections (with biases) of a scaled dot-product attention over flat
    heads (``heads*head_dim``; BERT, DistilBERT, ViT, DiT): queries and keys marked as the two
    factors of the logits (the keys also as keys), values and the output projection as not
    (``Param.attention_logits``, ``Param.attention_keys``)."""
    return (
        *linear(query, "heads*head_dim", "hidden", attention_logits=True),
        *linear(key, "heads*head_dim", "hidden", attention_logits=True, attention_keys=True),
        *linear(value, "heads*head_dim", "hidden", attention_logits=False),
        *linear(output, "hidden", "heads*head_dim", residual=True, attention_logits=False),
    )


def conv1d(prefix: str, in_dims: str, out_dims: str, residual: bool = False) -> tuple[Param, ...]:
    """The roles of GPT-2's ``Conv1D`` (weight stored transposed, as in × out)."""
    return (
        Param(f"{prefix}.weight", (in_dims, out_dims), fan_in=0, writes_residual=residual),
        Param(f"{prefix}.bias", (out_dims,), writes_residual=residual),
    )


def norm(prefix: str, bias: bool = True, dims: str = "hidden") -> tuple[Param, ...]:
    """The roles of a LayerNorm (or, without bias, an RMSNorm) over ``dims`` (the hidden axis)."""
    weight = Param(f"{prefix}.weight", (dims,), norm="gain")
    return (weight, Param(f"{prefix}.bias", (dims,), norm="shift")) if bias else (weight,)


def rotary_attention(prefix: str) -> tuple[Param, ...]:
    """q, k, v and output projections of a rotary attention with grouped key/value heads, as in
    Llama: q and k rows are whole heads in the rotary layout, v rows whole heads. The biases are
    roles too, for the configs that have them (Qwen2's q/k/v, ``attention_bias=True``)."""
    return (
        *linear(f"{prefix}.q_proj", f"heads*{ROTARY}", "hidden", whole_heads=True),
        *linear(f"{prefix}.k_proj", f"kv_heads*{ROTARY}", "hidden", whole_heads=True),
        *linear(f"{prefix}.v_proj", "kv_heads*head_dim", "hidden", whole_heads=True),
        *linear(f"{prefix}.o_proj", "hidden", "heads*head_dim", residual=True, whole_heads=True),
    )


def gated_mlp(prefix: str) -> tuple[Param, ...]:
    """The gate, up and down projections of a gated (SwiGLU/GeGLU) MLP (biases where
    ``mlp_bias=True``)."""
    return (
        *linear(f"{prefix}.gate_proj", "intermediate", "hidden"),
        *linear(f"{prefix}.up_proj", "intermediate", "hidden"),
        *linear(f"{prefix}.down_proj", "hidden", "intermediate", residual=True),
    )


def llama_layer(prefix: str) -> tuple[Param, ...]:
    """A Llama decoder layer: rotary attention, gated MLP and the RMSNorm before each."""
    return (
        *rotary_attention(f"{prefix}.self_attn"),
        *gated_mlp(f"{prefix}.mlp"),
        *norm(f"{prefix}.input_layernorm", bias=False),
        *norm(f"{prefix}.post_attention_layernorm", bias=False),
    )


def decoder_ends(embedding: Param | None = None) -> tuple[Param, ...]:
    """The word embeddings, final RMSNorm and output head around a Llama-style decoder's layers
    (the head is stored only when the config does not tie it to the embeddings: an ``nn.Linear``
    reading the hidden axis, so that is its fan-in)."""
    return (
        embedding or Param("embed_tokens.weight", ("vocab", "hidden")),
        *norm("norm", bias=False),
        *linear("lm_head", "vocab", "hidden", bias=False),
    )


# The config fields most transformers models hold their sizes in ...
CONFIG_AXES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab": "vocab_size",
}
# ... and Llama-style decoders' key/value heads.
DECODER_AXES = {**CONFIG_AXES, "kv_heads": "num_key_value_heads"}


def axis_size(axis: str, sizes: Mapping[str, int]) -> int:
    if axis.isdigit():
        return int(axis)
    try:
        return sizes[axis]
    except KeyError:  # a table names an axis its config mapping does not define
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


def fan_in(param: Param, sizes: Mapping[str, int]) -> float | None:
    """The input width of the whole weight (all parts of a concatenated input counted): what a
    function-preserving build divides the weight by the growth of. For a role the model scales
    by the square root of an axis (``scaled_by``), that square root."""
    if param.scaled_by is not None:
        return math.sqrt(axis_size(param.scaled_by, sizes))
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


def rotary_units(config: Any) -> int:
    """Into how many equal units one head splits so that each rotary half and the part rotary
    leaves alone are whole units: 2 for full rotary (``partial_rotary_factor`` 1), 8 for
    Pythia's 0.25 (two halves of 1/8 and six units passed through), 8 for Phi-4-mini's 0.75."""
    rope = config_value(config, "rope_parameters") or {}
    rotary = Fraction(rope.get("partial_rotary_factor", 1.0) or 1.0).limit_denominator(64)
    half, rest = rotary / 2, 1 - rotary
    # the largest share of a head that both a rotary half and the rest are whole multiples of
    unit = Fraction(math.gcd(half.numerator * rest.denominator, rest.numerator * half.denominator),
                    half.denominator * rest.denominator)
    return int(1 / unit)


def rotary_layout(units: int) -> str:
    """One head's dims string in the rotary layout: ``2*half_head_dim`` for full rotary (the two
    halves that rotary pairs are resized apart and never blended), ``units*rotary_unit`` otherwise."""
    return "2*half_head_dim" if units == 2 else f"{units}*rotary_unit"


def config_value(config: Any, name: str) -> Any:
    """A field of a config object or of a config dict (diffusers configs, stored configs)."""
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _in_layout(param: Param, layout: str) -> Param:
    """``param`` with ``{rotary}`` written out as ``layout`` in its dims and concatenated parts."""
    dims = tuple(dim.replace(ROTARY, layout) for dim in param.dims)
    segment = param.segment
    if segment:
        segment = replace(segment, parts=tuple(part.replace(ROTARY, layout) for part in segment.parts))
    return replace(param, dims=dims, segment=segment)


SizesHook = Callable[[Any, dict[str, Any]], None]
RolesHook = Callable[[Any], tuple[Param, ...]]
RequestHook = Callable[[dict[str, Any], Mapping[str, Any]], None]
TargetHook = Callable[[dict[str, Any], Mapping[str, Any], set[str]], None]


@dataclass(frozen=True, eq=False)
class Architecture:
    """A model family described as data: its parameter roles and its axes' config fields.

    * ``axes``: each axis name → the config field holding its size, written once. The resizable
      axes among them (:data:`RESIZABLE_AXES`, and the list of level widths ``channels``) are what
      a size request may name; the others (vocabulary, positions, image channels) are carried
      over from the source unchanged. ``head_dim`` is ``hidden // heads`` where the config has no
      such field, ``kv_heads`` is ``heads`` where it has none, and the rotary layout's axes follow
      from ``head_dim``.
    * ``params``: every parameter role a method resizes or carries. Dims may use ``{rotary}``
      (:func:`rotary_layout`) for the rotary part of a head.
    * ``presets``: named target sizes of real checkpoints, by axis name.
    * ``carried_fields``: further config fields that must stay as in the source (image size,
      a UNet's block types).
    * ``layer_fields``: config lists with one entry per layer (``layer_types``); a depth change
      takes the entries of the source blocks the target's blocks are made from, where the method
      keeps whole blocks, and otherwise lets the target's config class derive one the source's
      derived by default, and repeats the pattern of one the source set explicitly.
    * ``fresh``: regular expressions of task heads that are always freshly initialised
      (a classifier whose label set belongs to the new task).
    * ``tied_embedding``: the input embedding role an output head shares when the config sets
      ``tie_word_embeddings`` (the untied head has a role of its own, with the hidden axis as fan-in).
    * ``tied_copies``: for each output-head role a tied source does not store, the role it shares
      (the head's weight: the word embeddings; BERT's decoder bias: ``cls.predictions.bias``), so a
      model built with ``tie_word_embeddings=False`` from a tied source gets every head tensor.
    * ``library``: ``"transformers"`` (configs are ``PretrainedConfig``) or ``"diffusers"``
      (``ConfigMixin`` models; ``model_types`` are then class names such as ``"UNet2DModel"``).
    * ``norm_gain_offset``: what the family's norms add to their weight to get the gain they scale
      by (Gemma's RMSNorm: ``1 + weight``); 0 elsewhere.

    Hooks, for what a table cannot say as data:

    * ``sizes_hook(config, sizes)``: fills irregular axis sizes in place (GPT-2's ``n_inner=None``
      is 4 × hidden, a ViT's positions follow its image and patch sizes).
    * ``roles_hook(config)``: roles that follow the config, added to ``params`` (a UNet's block
      list).
    * ``request_hook(request, source)``: turns request names that are no config field into fields
      (a DiT's ``hidden`` is heads × head size), in place.
    * ``target_hook(target, source, asked)``: family rules and checks on the target's config fields
      once the generic ones passed (Gemma's attention scale follows the head size; a Mixtral needs
      ``num_experts_per_tok`` ≤ experts); raises ``LearngeneConfigError``.
    """

    family: str
    model_types: tuple[str, ...]
    axes: Mapping[str, str]
    params: tuple[Param, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    carried_fields: tuple[str, ...] = ()
    layer_fields: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()
    tied_embedding: str | None = None
    tied_copies: Mapping[str, str] = field(default_factory=dict)
    library: str = "transformers"
    norm_gain_offset: float = 0.0
    sizes_hook: SizesHook | None = None
    roles_hook: RolesHook | None = None
    request_hook: RequestHook | None = None
    target_hook: TargetHook | None = None

    @property
    def size_fields(self) -> dict[str, str]:
        """What a size request may name: each resizable axis → its config field."""
        return {axis: name for axis, name in self.axes.items() if is_size(axis)}

    @property
    def size_aliases(self) -> dict[str, str]:
        """:attr:`size_fields`, under the name model cards use for it."""
        return self.size_fields

    @property
    def carried(self) -> tuple[str, ...]:
        """Config fields carried over from the source unchanged."""
        return tuple(name for axis, name in self.axes.items() if not is_size(axis)) + self.carried_fields

    def uses_rotary(self) -> bool:
        return any(ROTARY in dim for p in self.params for dim in (*p.dims, *(p.segment.parts if p.segment else ())))

    def axis_sizes(self, config: Any) -> dict[str, Any]:
        """The size of every axis the roles of a model with this config name."""
        sizes = {axis: config_value(config, name) for axis, name in self.axes.items()}
        if "heads" in sizes:
            if "kv_heads" in sizes and sizes["kv_heads"] is None:
                sizes["kv_heads"] = sizes["heads"]
            if sizes.get("head_dim") is None and "hidden" in sizes:
                sizes["head_dim"] = sizes["hidden"] // sizes["heads"]
        if self.uses_rotary():
            units = rotary_units(config)
            sizes["half_head_dim" if units == 2 else "rotary_unit"] = sizes["head_dim"] // units
        if self.sizes_hook:
            self.sizes_hook(config, sizes)
        return sizes

    def roles(self, config: Any) -> tuple[Param, ...]:
        """Every parameter role of a model with this config."""
        params = self.params + (self.roles_hook(config) if self.roles_hook else ())
        if self.uses_rotary():
            layout = rotary_layout(rotary_units(config))
            params = tuple(_in_layout(p, layout) for p in params)
        if any(p.whole_heads for p in params):
            heads, kv_heads = config_value(config, self.axes["heads"]), None
            if "kv_heads" in self.axes:
                kv_heads = config_value(config, self.axes["kv_heads"])
            groups = max(1, heads // (kv_heads or heads))
            params = tuple(replace(p, head_groups=groups) if p.whole_heads else p for p in params)
        if self.tied_embedding and config_value(config, "tie_word_embeddings"):
            params = tuple(replace(p, tied_output=True) if p.name == self.tied_embedding else p for p in params)
        return params

    def matches(self, canonical_name: str, config: Any) -> list[tuple[Param, int | None]]:
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
