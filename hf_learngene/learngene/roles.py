"""Roles: a model's tensors grouped by the architecture table's roles, one role stacked into the
signal a method encodes, what a method may know of a role, and the record a learngene keeps of it."""

from __future__ import annotations

from typing import Any

import torch

from ..architectures import (
    Architecture,
    Param,
    expanded_shape,
    full_tensor_shape,
    is_resizable,
    segment_index,
    tensor_shape,
)
from ..configs import RoleRecord
from ..errors import UnsupportedArchitectureError
from ..methods import SignalSpec

__all__ = ["RoleRecord", "group_by_role", "signal_spec"]


def _storage_key(role: str) -> str:
    """A ``ParameterDict`` key for a role name (module names may not contain dots)."""
    return role.replace(".", "__")


def group_by_role(
    arch: Architecture, state: dict[str, torch.Tensor], what: str, config: Any
) -> dict[str, tuple[Param, dict[int | None, tuple[str, torch.Tensor]]]]:
    """Canonical tensors grouped by table role (fresh task heads left out); ``config`` is the
    model's, for tables whose roles follow the config (a UNet's blocks)."""
    groups: dict[str, tuple[Param, dict]] = {}
    unknown = []
    for name, tensor in state.items():
        if arch.is_fresh(name):
            continue
        found = arch.matches(name, config)
        if not found:
            unknown.append(name)
        for param, layer in found:
            groups.setdefault(param.role, (param, {}))[1][layer] = (name, tensor)
    if unknown:
        raise UnsupportedArchitectureError(
            f"the {arch.family} architecture table does not describe {len(unknown)} parameter(s) of the {what}: "
            f"{', '.join(unknown[:6])}{' …' if len(unknown) > 6 else ''}. This variant of the family is not supported."
        )
    return groups


def signal_spec(param: Param) -> SignalSpec:
    """What a method may know of a role: its axes, which are resizable, which are inputs, its
    name, whether a tied output head shares it, how its heads are grouped, and the axis whose
    square root the model scales it by."""
    axes = tuple(param.axes())
    inputs = [False] if param.layered else []
    for dim, names in enumerate(param.factors()):
        inputs += [dim == param.fan_in] * len(names)
    return SignalSpec(
        axes,
        tuple(is_resizable(a) for a in axes),
        tuple(inputs),
        param.writes_residual,
        role=param.role,
        tied_output=param.tied_output,
        head_groups=param.head_groups,
        scaled_by=param.scaled_by,
        attention_logits=param.attention_logits,
        attention_keys=param.attention_keys,
    )


def _stack_role(param: Param, members: dict, sizes: dict[str, int]) -> torch.Tensor:
    """One role's tensors (its part of each, for a concatenated dimension) stacked over layers in
    float32 and reshaped onto its expanded axes. Members may be lazy checkpoint tensors: each is
    read when its layer is copied in, so only the stacked role is ever held. The layers before
    the role's ``first_layer`` have no tensor: they are stacked as the role's identity value."""
    expected, part = full_tensor_shape(param, sizes), segment_index(param, sizes)
    if param.layered:
        layers = sorted(members)
        if layers != list(range(param.first_layer, sizes["layers"])):
            raise UnsupportedArchitectureError(
                f"{param.name}: found layers {layers}, expected {param.first_layer}..{sizes['layers'] - 1} from the config"
            )
        rows = sizes["layers"]
    else:
        layers = [None]
        rows = 1
    for layer in layers:
        if tuple(members[layer][1].shape) != expected:
            raise UnsupportedArchitectureError(
                f"{param.name} has shape {tuple(members[layer][1].shape)} but the config implies {expected}"
            )
    stacked = torch.empty((rows, *tensor_shape(param, sizes)), dtype=torch.float32)
    if param.layered:
        stacked[: param.first_layer].fill_(param.identity)
    for layer in layers:
        tensor = members[layer][1]
        tensor = tensor.load() if hasattr(tensor, "load") else tensor.detach()
        stacked[0 if layer is None else layer].copy_(tensor[part])
        del tensor
    return stacked.reshape(expanded_shape(param, sizes))
