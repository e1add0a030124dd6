"""Turn a size request (a preset name, a dict of fields, or a whole config) into a target config."""

from __future__ import annotations

from typing import Any, Mapping, Union

from transformers import AutoConfig, PretrainedConfig

from ..errors import FamilyMismatchError, LearngeneConfigError
from .base import Architecture

SizeRequest = Union[None, str, Mapping[str, Any], PretrainedConfig]


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
    grouping when it divides the new head count.
    """
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
        if fields.kv_heads and fields.kv_heads not in requested and fields.heads in requested:
            group = source_sizes["heads"] // source_sizes["kv_heads"]
            heads = target[fields.heads]
            target[fields.kv_heads] = heads // group if heads % group == 0 else heads
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
    return AutoConfig.for_model(model_type, **target)


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
