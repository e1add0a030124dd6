"""Architecture tables, one per model family, and the lookup from a config's ``model_type``."""

from __future__ import annotations

from ..errors import UnsupportedArchitectureError
from .base import RESIZABLE_AXES, Architecture, Param, SizeFields, expanded_shape, fan_in, tensor_shape
from .bert import BERT
from .gpt2 import GPT2
from .llama import LLAMA
from .vit import VIT
from .sizing import resolve_target_config

ARCHITECTURES: dict[str, Architecture] = {arch.family: arch for arch in (BERT, GPT2, LLAMA, VIT)}


def supported_model_types() -> list[str]:
    return sorted(t for arch in ARCHITECTURES.values() for t in arch.model_types)


def architecture_for(model_type: str) -> Architecture:
    """The table whose family covers ``model_type`` (a config's ``model_type``)."""
    for arch in ARCHITECTURES.values():
        if model_type in arch.model_types:
            return arch
    raise UnsupportedArchitectureError(
        f"model_type '{model_type}' has no architecture table; supported model types: "
        f"{', '.join(supported_model_types())}"
    )


__all__ = [
    "ARCHITECTURES",
    "RESIZABLE_AXES",
    "Architecture",
    "Param",
    "SizeFields",
    "architecture_for",
    "expanded_shape",
    "fan_in",
    "resolve_target_config",
    "supported_model_types",
    "tensor_shape",
]
