"""Turn a size request (a preset name, a dict of fields, or a whole config) into a target config.

transformers families have ``PretrainedConfig`` configs; diffusers families have the frozen
config dict of a ``ConfigMixin`` model, which the learngene stores with its ``_class_name``.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, PretrainedConfig
from transformers.utils import logging

from ..errors import FamilyMismatchError, LearngeneConfigError
from .base import Architecture

logger = logging.get_logger(__name__)

SizeRequest = Union[None, str, Mapping[str, Any], PretrainedConfig]

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


def _size_updates(arch: Architecture, size: SizeRequest) -> dict[str, Any]:
    """Config-field updates asked for by ``size``; axis names are mapped to the family's fields."""
    if size is None:
        return {}
    if isinstance(size, str):
        if size not in arch.presets:
            raise LearngeneConfigError(
                f"unknown size preset '{size}' for the {arch.family} family; valid presets: "
                f"{', '.join(arch.presets)} (or pass a dict such as "
                "{'layers': 4, 'hidden': 256, 'heads': 4}, or a full config)"
            )
        size = arch.presets[size]
    if not isinstance(size, Mapping):
        raise LearngeneConfigError(
            f"size must be a preset name, a dict of config fields or a PretrainedConfig, got {type(size).__name__}"
        )
    fields = arch.size_fields.as_dict()
    updates = {}
    for key, value in size.items():
        updates[fields.get(key, key)] = value
    return updates


def resolve_target_config(
    arch: Architecture, source_config: PretrainedConfig, size: SizeRequest = None, **overrides: Any
) -> PretrainedConfig:
    """The config of the model to build: the source's config with the requested sizes applied.

    Fields not named keep the source's values. When the width changes and the MLP width is
    not given, the source's MLP ratio is kept; when the head count changes and a Llama
    ``head_dim`` is not given, it becomes ``hidden // heads``; ``kv_heads`` keeps the source's
    grouping when it divides the new head count, and is otherwise the head count (full multi-head
    attention), with a warning saying so.
    """
    if arch.size_fields is None:
        return _resolve_by_aliases(arch, source_config, size, **overrides)
    fields = arch.size_fields
    if isinstance(size, PretrainedConfig):
        if size.model_type not in arch.model_types:
            raise FamilyMismatchError(
                f"this learngene is of the {arch.family} family ({', '.join(arch.model_types)}) and cannot build "
                f"a '{size.model_type}' model; pass a config of model_type {' or '.join(arch.model_types)}"
            )
        target = size.to_dict()
        requested = set()
    else:
        updates = _size_updates(arch, size)
        if "model_type" in updates and updates["model_type"] not in arch.model_types:
            raise FamilyMismatchError(
                f"this learngene is of the {arch.family} family and cannot build a '{updates['model_type']}' model"
            )
        requested = set(updates)
        target = source_config.to_dict()
        target.update(updates)
        source_sizes = arch.axis_sizes(source_config)
        if fields.intermediate not in requested and fields.hidden in requested:
            ratio = source_sizes["intermediate"] / source_sizes["hidden"]
            target[fields.intermediate] = int(round(target[fields.hidden] * ratio))
        kv_asked = fields.kv_heads in requested or fields.kv_heads in overrides
        if fields.kv_heads and not kv_asked and fields.heads in requested:
            target[fields.kv_heads] = _kv_heads_for(source_sizes, target[fields.heads], fields.kv_heads)
        if "head_dim" in target and "head_dim" not in requested and (requested & {fields.hidden, fields.heads}):
            target["head_dim"] = None  # recomputed below from hidden // heads
    target.update(overrides)
    _validate(arch, source_config, target, requested | set(overrides))
    if "head_dim" in target and target["head_dim"] is None:
        target["head_dim"] = target[fields.hidden] // target[fields.heads]
    for name in ("_name_or_path", "transformers_version"):
        target.pop(name, None)
    target["architectures"] = []  # set by save_pretrained; transformers' auto mapping needs a list
    model_type = target.pop("model_type", source_config.model_type)
    try:
        return AutoConfig.for_model(model_type, **target)
    except (ValueError, TypeError, StrictDataclassError) as error:  # transformers' own checks (e.g. an odd rotary head size)
        reason = str(getattr(error, "__cause__", None) or error).strip().splitlines()[-1].strip()
        raise LearngeneConfigError(f"transformers refuses this {model_type} size: {reason}") from None


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


def _validate(arch: Architecture, source_config: PretrainedConfig, target: dict, requested: set[str]) -> None:
    fields = arch.size_fields.as_dict()
    for axis, name in fields.items():
        value = target.get(name)
        if axis == "intermediate" and value is None:  # GPT-2's n_inner=None means 4 × hidden
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LearngeneConfigError(f"{name} ({axis}) must be a positive integer, got {value!r}")
    hidden, heads = target[fields["hidden"]], target[fields["heads"]]
    explicit_head_dim = target.get("head_dim")
    if explicit_head_dim is None and hidden % heads:
        raise LearngeneConfigError(
            f"hidden size {hidden} is not divisible by the head count {heads}; choose a head count that divides "
            f"{hidden} (e.g. {', '.join(str(h) for h in range(1, min(hidden, 64) + 1) if hidden % h == 0)})"
        )
    if "kv_heads" in fields:
        kv = target[fields["kv_heads"]]
        if heads % kv:
            raise LearngeneConfigError(f"{fields['kv_heads']}={kv} must divide num_attention_heads={heads}")
    for name in arch.carried_fields:
        source_value = getattr(source_config, name)
        if name in target and target[name] != source_value:
            what = "vocabulary size" if name == "vocab_size" else name
            raise LearngeneConfigError(
                f"cannot change {what} from {source_value} to {target[name]}: {name} is carried over from the source "
                "unchanged (its rows are reused as they are); leave it out of the size request"
            )


def _resolve_by_aliases(arch: Architecture, source_config: Any, size: Any, **overrides: Any) -> Any:
    """The target config of a family sized by named config fields (diffusers models, PIPMN): the
    source's fields with the requested sizes applied."""
    if isinstance(source_config, PretrainedConfig):
        source_config = source_config.to_dict()
    if isinstance(size, str):
        if size not in arch.presets:
            hint = f"valid presets: {', '.join(arch.presets)}" if arch.presets else "this family has no presets"
            raise LearngeneConfigError(
                f"unknown size preset '{size}' for the {arch.family} family; {hint} (or pass a dict of sizes)"
            )
        size = arch.presets[size]
    if size is not None and not isinstance(size, Mapping):
        raise LearngeneConfigError(f"size must be a preset name or a dict of sizes, got {type(size).__name__}")
    updates = {arch.size_aliases.get(key, key): value for key, value in {**(size or {}), **overrides}.items()}
    target = {k: v for k, v in dict(source_config).items() if k not in _NOT_STORED}
    if "hidden" in updates:  # a DiT's width is heads × head_dim: the head size follows from the width
        hidden = updates.pop("hidden")
        heads = updates.get("num_attention_heads", target["num_attention_heads"])
        if not isinstance(hidden, int) or hidden < 1 or hidden % heads:
            raise LearngeneConfigError(
                f"hidden size {hidden!r} must be a positive multiple of the head count {heads}"
            )
        updates["attention_head_dim"] = hidden // heads
    if "num_labels" in updates:  # a transformers config makes its label maps from num_labels
        target.pop("id2label", None), target.pop("label2id", None)
        target["num_labels"] = updates["num_labels"]
    unknown = sorted(set(updates) - set(target))
    if unknown:
        raise LearngeneConfigError(
            f"{', '.join(unknown)} is not a field of {model_type_of(target)}; size requests take "
            f"{', '.join(arch.size_aliases)} or config fields such as {', '.join(sorted(k for k in target if not k.startswith('_'))[:6])}"
        )
    for name, value in updates.items():
        if name in arch.carried_fields and value != source_config[name]:
            raise LearngeneConfigError(
                f"cannot change {name} from {source_config[name]!r} to {value!r}: it is carried over from the source "
                "unchanged; leave it out of the size request"
            )
    target.update(updates)
    for name, axis in arch.size_aliases.items():
        value = target[axis]
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise LearngeneConfigError(f"{axis} ({name}) must be a positive integer or a list of them, got {value!r}")
    for field in arch.size_aliases.values():  # a list of widths keeps the source's structure
        if isinstance(target[field], (list, tuple)):
            if len(target[field]) != len(source_config[field]):
                raise LearngeneConfigError(
                    f"{field} must keep the source's {len(source_config[field])} levels, got {list(target[field])}; "
                    "the block structure is carried over"
                )
            target[field] = list(target[field])
    if arch.check_size:
        arch.check_size(target)
    return config_from_dict(target)
