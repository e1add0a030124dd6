"""Architecture tables, one per model family, found in this package, and the lookup from a config's
``model_type``.

Every :class:`Architecture` defined at the top level of a module of this package is a family:
dropping a new table file here registers it, with no other file to change.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import UnsupportedArchitectureError
from .base import (
    RESIZABLE_AXES,
    Architecture,
    Param,
    expanded_shape,
    fan_in,
    full_tensor_shape,
    is_resizable,
    segment_index,
    tensor_shape,
)
from .sizing import config_as_dict, config_from_dict, model_type_of, resolve_target_config


def _discover() -> dict[str, Architecture]:
    """Every table in this package's modules, by family; a family or model type claimed twice is an error."""
    found: dict[str, Architecture] = {}
    owners: dict[str, str] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if not isinstance(value, Architecture):  # a table imported from another module is the same object
                continue
            if found.get(value.family, value) is not value:
                raise ImportError(f"two architecture tables claim the family '{value.family}' ({module.__name__})")
            found[value.family] = value
            for model_type in value.model_types:
                if owners.setdefault(model_type, value.family) != value.family:
                    raise ImportError(
                        f"model type '{model_type}' is claimed by the {owners[model_type]} and {value.family} tables"
                    )
    return found


ARCHITECTURES: dict[str, Architecture] = _discover()


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
