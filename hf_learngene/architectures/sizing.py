"""One sizing path: a size request becomes the config of the model to build.

A request is a preset name, a dict (axis names such as ``layers`` or config fields such as
``num_hidden_layers``) or a whole config. :func:`resolve_target_config` passes each representation
once: the request as a dict (:func:`_request`), its config fields (:func:`_as_fields`), the
target's fields — the source's with the request applied and the source's proportions kept where
the request is silent (:func:`_follow_source`) —, one validation (:func:`_check`), the family's
hook, and the config object (:func:`_config`). The axis sizes of the built model are then read
from that config by :meth:`~hf_learngene.architectures.Architecture.axis_sizes`.

transformers families have ``PretrainedConfig`` configs; diffusers families have the frozen
config dict of a ``ConfigMixin`` model, which the learngene stores with its ``_class_name``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Mapping, Optional, Union

from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, PretrainedConfig
from transformers.utils import logging

from ..errors import FamilyMismatchError, LearngeneConfigError
from .base import LEVEL_WIDTHS, Architecture, rotary_units

logger = logging.get_logger(__name__)

SizeRequest = Union[None, str, Mapping[str, Any], PretrainedConfig]
SourceBlocks = Callable[[int], Optional[list[int]]]  # a target depth → the source block of each target block

_NOT_STORED = ("architectures", "_name_or_path", "transformers_version", "_diffusers_version", "_use_default_values")


def model_type_of(model_or_config: Any) -> str:
    """A transformers config's ``model_type``, or a diffusers model's (or stored config's) class name."""
    config = getattr(model_or_config, "config", model_or_config)
    if isinstance(config, PretrainedConfig):
        return config.model_type
    if isinstance(config, Mapping):  # a diffusers config, or a stored config dict
        return config.get("_class_name") or config.get("model_type") or type(model_or_config).__name__
    return type(model_or_config).__name__


def config_as_dict(model: Any) -> dict[str, Any]:
    """A model's config as the JSON-ready dict a learngene stores (diffusers: with ``_class_name``)."""
    if isinstance(model.config, PretrainedConfig):
        fields = model.config.to_dict()
    else:
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(model.config).items()}
        fields["_class_name"] = type(model).__name__
    return {k: v for k, v in fields.items() if k not in _NOT_STORED}


def config_from_dict(fields: Mapping[str, Any]) -> Any:
    """The config object of a stored config dict: a ``PretrainedConfig``, or a diffusers ``FrozenDict``."""
    fields = dict(fields)
    if "_class_name" in fields:
        from diffusers.configuration_utils import FrozenDict

        return FrozenDict(fields)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def _fields_of(config: Any) -> dict[str, Any]:
    """A config's fields as a plain dict, without the bookkeeping a config file adds."""
    fields = config.to_dict() if isinstance(config, PretrainedConfig) else dict(config)
    return {k: v for k, v in fields.items() if k not in _NOT_STORED}


def resolve_target_config(arch: Architecture, source_config: Any, size: SizeRequest = None, *,
                          source_blocks: SourceBlocks | None = None, **overrides: Any) -> Any:
    """The config of the model to build: the source's config with the requested sizes applied.

    ``size`` is a preset name, a dict of axis names or config fields, or a whole config of the
    family; ``overrides`` are further fields (``num_labels=2``), applied the same way. Fields not
    named keep the source's values; where a request names some sizes and not others, the source's
    proportions are kept (see :func:`_follow_source`). A whole config is taken as it is.
    ``source_blocks(depth)`` says which source block each target block is made from, where the
    method keeps whole blocks (``None`` where it mixes them), so per-layer lists can follow them.
    """
    source = _fields_of(source_config)
    if isinstance(size, PretrainedConfig):
        _check_family(arch, size.model_type)
        target, asked = _fields_of(size), _as_fields(arch, overrides)
    else:
        request = _request(arch, size)
        asked = {**_as_fields(arch, request), **_as_fields(arch, overrides)}
        if arch.request_hook:
            arch.request_hook(asked, source)
        # diffusers configs have only their own fields; a transformers config takes any further
        # attribute as an override (as from_pretrained's kwargs do), so only its size is checked
        named = asked if arch.library == "diffusers" else _as_fields(arch, request)
        _check_known(arch, source_config, source, [key for key in named if key in asked])
        target = dict(source)
    if "model_type" in asked:
        _check_family(arch, asked["model_type"])
    if "num_labels" in asked:  # a config makes its label maps from num_labels
        target.pop("id2label", None), target.pop("label2id", None)
    target.update(asked)
    if not isinstance(size, PretrainedConfig):
        _follow_source(arch, source_config, target, set(asked), source_blocks)
    _check(arch, source, target)
    if arch.target_hook:  # a whole config names every field: the hook changes none of them
        arch.target_hook(target, source, set(target) if isinstance(size, PretrainedConfig) else set(asked))
    return _config(arch, target)


def _request(arch: Architecture, size: SizeRequest) -> dict[str, Any]:
    """A size request as a dict: a preset's sizes, or the dict given."""
    if size is None:
        return {}
    names = ", ".join(arch.size_fields)
    if isinstance(size, str):
        if size not in arch.presets:
            valid = f"valid presets: {', '.join(arch.presets)}" if arch.presets else "this family has no presets"
            whole = ", or a full config" if arch.library == "transformers" else ""
            raise LearngeneConfigError(
                f"unknown size preset '{size}' for the {arch.family} family; {valid} (or pass a dict of sizes "
                f"naming {names} or config fields{whole})"
            )
        return dict(arch.presets[size])
    if not isinstance(size, Mapping):
        whole = f"; a whole {arch.family} config is taken as it is" if arch.library == "transformers" else ""
        raise LearngeneConfigError(
            f"size must be a preset name or a dict of sizes, got {type(size).__name__}; a dict names {names} or "
            f"config fields{whole}"
        )
    return dict(size)


def _as_fields(arch: Architecture, request: Mapping[str, Any]) -> dict[str, Any]:
    """A request with its axis names replaced by the family's config fields; two names of one
    field (``hidden`` and ``hidden_size``) are refused rather than one silently winning."""
    fields: dict[str, Any] = {}
    named_by: dict[str, str] = {}
    for key, value in request.items():
        name = arch.axes.get(key, key)
        if name in named_by:
            raise LearngeneConfigError(
                f"{named_by[name]!r} and {key!r} both name the config field {name} (given {fields[name]!r} and "
                f"{value!r}); pass only one of them"
            )
        fields[name], named_by[name] = value, key
    return fields


def _check_family(arch: Architecture, model_type: str) -> None:
    if model_type not in arch.model_types:
        raise FamilyMismatchError(
            f"this learngene is of the {arch.family} family ({', '.join(arch.model_types)}) and cannot build "
            f"a '{model_type}' model; pass a config of model_type {' or '.join(arch.model_types)}"
        )


def _check_known(arch: Architecture, source_config: Any, source: Mapping[str, Any], names: list[str]) -> None:
    unknown = [name for name in names if name not in source and not hasattr(source_config, name)]
    if unknown:
        model_type = source.get("_class_name") or source.get("model_type")
        examples = ", ".join(sorted(k for k in source if not k.startswith("_"))[:6])
        raise LearngeneConfigError(
            f"{', '.join(sorted(unknown))} is not a field of {model_type}; a size request names "
            f"{', '.join(arch.size_fields)} or config fields such as {examples}"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _follow_source(arch: Architecture, source_config: Any, target: dict[str, Any], asked: set[str],
                   source_blocks: SourceBlocks | None = None) -> None:
    """Keep the source's proportions where the request names some sizes and not others.

    * a new width without an MLP width keeps the source's MLP ratio;
    * new heads without ``kv_heads`` keep the source's grouping where it divides them (else full
      multi-head attention, with a warning saying so);
    * a new width or head count changes a ``head_dim`` that the source has as ``hidden // heads``;
      an explicit head size that differs from it (Qwen3, Gemma) is kept;
    * in a rotary family (Llama, Mistral, Qwen2, Phi-3, ...) whose head size is ``hidden // heads``,
      a new width without a head count keeps the head size instead: the head count follows the
      width (and ``kv_heads`` the source's grouping), because a new head size changes every RoPE
      frequency and the 1/√head_dim scale, which no build can compensate. Where the width is no
      multiple of the head size, or the grouping does not fit, the head count is kept as before,
      with a warning that the build cannot keep the source's function (:func:`_keep_head_size`);
    * a new depth gives a per-layer list (``layer_types``) the entries of the source blocks each
      target block is made from, where the method keeps whole blocks (``source_blocks``: weight
      selection, stacking, BoT's ``shrink="units"``), so every kept block keeps its attention
      kind (Gemma's local layers their window and RoPE base). A request that changes what the
      list is derived from (``global_attn_every_n_layers``) gets the derived list. Where blocks
      are mixed (FRONT, BoT's wavelet) a list the source's config class derived by default is
      derived again at the target's depth, and the pattern of one the source set explicitly is
      repeated.
    Values a request gets wrong are left for :func:`_check` to report.
    """
    fields, sizes = arch.size_fields, arch.axis_sizes(source_config)
    hidden, intermediate = fields.get("hidden"), fields.get("intermediate")
    if hidden in asked and intermediate and intermediate not in asked and _is_count(target[hidden]):
        target[intermediate] = int(round(target[hidden] * sizes["intermediate"] / sizes["hidden"]))
    heads, kv_heads = fields.get("heads"), fields.get("kv_heads")
    derived = hidden and heads and sizes.get("head_dim") == sizes["hidden"] // sizes["heads"]
    if (arch.uses_rotary() and derived and hidden in asked and heads not in asked
            and fields.get("head_dim") not in asked and _is_count(target[hidden])):
        _keep_head_size(fields, sizes, target, asked)
    if kv_heads and heads in asked and kv_heads not in asked and _is_count(target[heads]):
        target[kv_heads] = _kv_heads_for(sizes, target[heads], kv_heads)
    head_dim = fields.get("head_dim")
    # a source without a head_dim field (Qwen2, Phi-3, GPT-NeoX may have none) has none to change
    follows = hidden and head_dim in target and sizes["head_dim"] == sizes["hidden"] // sizes["heads"]
    if follows and head_dim not in asked and (hidden in asked or heads in asked):
        target[head_dim] = None  # hidden // heads, once they are checked
    layers = fields.get("layers")
    if layers in asked and _is_count(target[layers]):
        blocks = source_blocks(target[layers]) if source_blocks and arch.layer_fields else None
        for name in arch.layer_fields:
            if name in asked or not isinstance(target.get(name), list):
                continue
            changed = _request_changes(source_config, target, name, layers)
            if blocks is not None and len(target[name]) == sizes["layers"] and not changed:
                target[name] = [target[name][block] for block in blocks]
            elif changed or _derived_by_default(source_config, name):
                del target[name]  # the target's config class derives it for its own depth
            else:
                target[name] = _repeat_pattern(target[name], target[layers])


def _derived(fields: Mapping[str, Any], name: str) -> list | None:
    """The per-layer list ``name`` that the config class derives from ``fields`` (without the list)."""
    fields = {key: value for key, value in fields.items() if key != name}
    try:
        return _listed(getattr(AutoConfig.for_model(fields.pop("model_type"), **fields), name, None))
    except (ValueError, TypeError, KeyError, StrictDataclassError):
        return None  # the fields alone make no config


def _request_changes(source_config: Any, target: dict[str, Any], name: str, layers: str) -> bool:
    """Whether the target's fields derive another list ``name`` than the source's fields would at
    the target's depth: a request that changes the pattern (``global_attn_every_n_layers``,
    ``max_window_layers``) gets the pattern it asks for, not the kept blocks' kinds."""
    if not isinstance(source_config, PretrainedConfig):
        return False
    return _derived(target, name) != _derived({**_fields_of(source_config), layers: target[layers]}, name)


def _derived_by_default(source_config: Any, name: str) -> bool:
    """Whether the source's per-layer list ``name`` is what its config class derives from its other
    fields (Gemma 3's five local layers and one global, cut to a 4-layer source's four local ones):
    its truncated pattern is then not the family's, and must not be repeated."""
    if not isinstance(source_config, PretrainedConfig):
        return False
    fields = _fields_of(source_config)
    derived = _derived(fields, name)  # None: the fields alone make no config, so the list is kept as it is
    return derived is not None and derived == _listed(fields.get(name))


def _repeat_pattern(values: list, length: int) -> list:
    """``values`` at ``length`` entries, repeating its shortest period (ModernBERT's every third
    layer global, Gemma 3's five local layers and one global stay so at any depth)."""
    if not values:
        return values
    period = next(p for p in range(1, len(values) + 1) if all(v == values[i % p] for i, v in enumerate(values)))
    return [values[i % period] for i in range(length)]


def _keep_head_size(fields: Mapping[str, str], source_sizes: Mapping[str, int], target: dict[str, Any],
                    asked: set[str]) -> None:
    """A rotary family's new width without a head count: as many heads of the source's size as the
    width holds, and key/value heads by the source's grouping (or those asked for). Rotary
    embeddings turn pair ``i`` of a head at ``base^(-2i/head_dim)`` and the logits are divided by
    √head_dim, so a head size of its own would change both, and the build would lose the source's
    function. Where the heads do not fit the width or the grouping, the source's head count stays
    (the head size follows the width), with a warning saying so."""
    width, size = target[fields["hidden"]], source_sizes["head_dim"]
    heads, kv_field = width // size, fields.get("kv_heads")
    why = f"hidden {width} is no multiple of the source's head size {size}" if width % size else None
    kv_heads = None
    if why is None and kv_field in asked:
        kv_heads = target[kv_field]
        if not (_is_count(kv_heads) and heads % kv_heads == 0):
            why = f"{kv_field}={kv_heads} does not divide the {heads} heads of size {size} that hidden {width} holds"
    elif why is None and kv_field:
        group = source_sizes["heads"] // source_sizes["kv_heads"]
        kv_heads = heads // group
        if heads % group:
            why = (f"the {heads} heads of size {size} that hidden {width} holds cannot keep the source's {group} "
                   "query heads per key/value head")
    if why is None:
        target[fields["heads"]] = heads
        if kv_field:
            target[kv_field] = kv_heads
        return
    kept = source_sizes["heads"]
    if width % size:
        fix = f"ask for a width that is a multiple of {size}"
    else:
        choices = ", ".join(str(k) for k in range(1, heads + 1) if heads % k == 0)
        fix = f"name the heads: heads={heads}" + (f" with {kv_field} one of {choices}" if kv_field else "")
    logger.warning(
        f"{why}, so the build keeps the source's {kept} heads and the head size becomes {width / kept:g}: the RoPE "
        f"frequencies and the attention scale change, and the built model cannot keep the source's function. To "
        f"keep it, {fix}"
    )


def _kv_heads_for(source_sizes: Mapping[str, int], heads: int, field: str) -> int:
    """The key/value head count of a target with ``heads`` query heads: the source's grouping
    (query heads per key/value head) where it divides ``heads``; otherwise full multi-head
    attention, with a warning, since the grouping then cannot be kept."""
    group = source_sizes["heads"] // source_sizes["kv_heads"]
    if heads % group == 0:
        return heads // group
    choices = ", ".join(str(k) for k in range(1, heads + 1) if heads % k == 0)
    logger.warning(
        f"the source groups {group} query heads per key/value head ({source_sizes['heads']} heads, "
        f"{source_sizes['kv_heads']} kv_heads), which does not divide the {heads} heads asked for; building with "
        f"kv_heads={heads} (full multi-head attention, no grouping). To choose the grouping, pass kv_heads "
        f"explicitly, e.g. size={{'heads': {heads}, 'kv_heads': k}} or {field}=k, with k one of {choices}"
    )
    return heads


def _check(arch: Architecture, source: Mapping[str, Any], target: dict[str, Any]) -> None:
    """Every size of the target, checked once: positive counts, heads that divide the width,
    key/value heads that divide the heads, a head size the rotary layout splits, level lists
    of the source's length, and carried fields as in the source. A ``head_dim`` left to follow
    the width is filled in."""
    fields = arch.size_fields
    for axis, name in fields.items():
        value = target.get(name)
        if axis == LEVEL_WIDTHS:
            _check_levels(name, value, source[name])
            target[name] = list(value)
        elif value is None and (axis == "head_dim" or source.get(name) is None):
            continue  # the config derives it (head_dim from the width, GPT-2's n_inner as 4 × hidden)
        elif not _is_count(value):
            raise LearngeneConfigError(f"{name} ({axis}) must be a positive integer (a count), got {value!r}")
    head_dim = fields.get("head_dim")
    if "hidden" in fields and "heads" in fields and (head_dim is None or target.get(head_dim) is None):
        hidden, heads = target[fields["hidden"]], target[fields["heads"]]
        if hidden % heads:
            divisors = ", ".join(str(h) for h in range(1, min(hidden, 64) + 1) if hidden % h == 0)
            raise LearngeneConfigError(
                f"hidden size {hidden} is not divisible by the head count {heads}; choose a head count that divides "
                f"{hidden} (e.g. {divisors})"
            )
        if head_dim in target:  # a config without the field derives it from the width
            target[head_dim] = hidden // heads
    if "kv_heads" in fields and target.get(fields["kv_heads"]) is not None:
        heads, kv_heads = target[fields["heads"]], target[fields["kv_heads"]]
        if heads % kv_heads:
            raise LearngeneConfigError(f"{fields['kv_heads']}={kv_heads} must divide {fields['heads']}={heads}")
    if arch.uses_rotary():
        units, size = rotary_units(SimpleNamespace(**target)), arch.axis_sizes(SimpleNamespace(**target))["head_dim"]
        if size % units:
            need, what = ("even", "its two rotary halves") if units == 2 else (
                f"a multiple of {units}", f"{units} equal units (the rotary halves and the rest)")
            raise LearngeneConfigError(
                f"the head size {size} must be {need}: the {arch.family} table splits a head into {what}; choose a "
                "head size (hidden / heads, or head_dim) that is"
            )
    for name in arch.carried:
        if name in target and name in source and _listed(target[name]) != _listed(source[name]):
            what = "vocabulary size" if name == "vocab_size" else name
            raise LearngeneConfigError(
                f"cannot change {what} from {source[name]!r} to {target[name]!r}: {name} is carried over from the "
                "source unchanged (its rows are reused as they are); leave it out of the size request"
            )


def _check_levels(name: str, value: Any, source_value: Any) -> None:
    if not isinstance(value, (list, tuple)) or not value or not all(_is_count(v) for v in value):
        raise LearngeneConfigError(f"{name} must be a list of positive integers (one width per level), got {value!r}")
    if len(value) != len(source_value):
        raise LearngeneConfigError(
            f"{name} must keep the source's {len(source_value)} levels, got {list(value)}; the block structure is "
            "carried over"
        )


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _config(arch: Architecture, target: dict[str, Any]) -> Any:
    """The config object of the target's fields."""
    if arch.library == "diffusers":
        return config_from_dict(target)
    target["architectures"] = []  # set by save_pretrained; transformers' auto mapping needs a list
    model_type = target.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **target)
    except (ValueError, TypeError, StrictDataclassError) as error:  # transformers' own checks (e.g. an odd rotary head size)
        reason = str(getattr(error, "__cause__", None) or error).strip().splitlines()[-1].strip()
        raise LearngeneConfigError(f"transformers refuses this {model_type} size: {reason}") from None
