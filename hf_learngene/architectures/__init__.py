"""Architecture tables, one per model family, and the lookup from a config's ``model_type``."""

from __future__ import annotations

from ..errors import UnsupportedArchitectureError
from .base import (
    RESIZABLE_AXES,
    Architecture,
    Param,
    SizeFields,
    expanded_shape,
    fan_in,
    full_tensor_shape,
    is_resizable,
    segment_index,
    tensor_shape,
)
from .bert import BERT
from .dit import DIT
from .gpt2 import GPT2
from .llama import LLAMA
from .pipmn import PIPMN
from .unet import UNET
from .vit import VIT
from .sizing import config_as_dict, config_from_dict, model_type_of, resolve_target_config

ARCHITECTURES: dict[str, Architecture] = {arch.family: arch for arch in (BERT, GPT2, LLAMA, VIT, PIPMN, DIT, UNET)}


def supported_model_types(library: str | None = None) -> list[str]:
    """transformers ``model_type`` values and diffusers class names that have a table."""
    return sorted(
        t for arch in ARCHITECTURES.values() if library in (None, arch.library) for t in arch.model_types
    )


def architecture_for(model_type: str) -> Architecture:
    """The table whose family covers ``model_type`` (a transformers config's ``model_type``, or a
    diffusers model's class name)."""
    for arch in ARCHITECTURES.values():
        if model_type in arch.model_types:
            return arch
    raise UnsupportedArchitectureError(
        f"model_type '{model_type}' has no architecture table; supported model types: "
        f"{', '.join(supported_model_types('transformers'))}; diffusers models: "
        f"{', '.join(supported_model_types('diffusers'))}"
        + (" (a FINE model: convert it with to_dense() first)" if model_type.startswith("FINE") else "")
    )


__all__ = [
    "ARCHITECTURES",
    "RESIZABLE_AXES",
    "Architecture",
    "Param",
    "SizeFields",
    "architecture_for",
    "config_as_dict",
    "config_from_dict",
    "expanded_shape",
    "fan_in",
    "full_tensor_shape",
    "is_resizable",
    "model_type_of",
    "resolve_target_config",
    "segment_index",
    "supported_model_types",
    "tensor_shape",
]
