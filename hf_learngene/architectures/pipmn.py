"""PIPMN audio classifiers (``model_type == "pipmn"``): the widths of the inverse pyramid.

The encoder widths (``encoder_channels``, the paper's 400 and 800) are resizable axes
``channels1``, ``channels2``, ...; the decoder mirrors them, so resizing one width resizes its
encoder block and its paired decoder block together. The feature count (100) and the token count
(10) are carried over, so a learngene builds narrower or wider PIPMNs for the same features.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import Architecture, Param, config_value, linear


def _widths(config: Any) -> list[str]:
    """Axis names along the pyramid: features, channels1..channelsN, back down to features."""
    encoder = [f"channels{i + 1}" for i in range(len(config_value(config, "encoder_channels")))]
    return ["features", *encoder, *reversed(encoder[:-1]), "features"]


def _pipmn_sizes(config: Any, sizes: dict[str, Any]) -> None:
    """The encoder widths as the axes channels1..channelsN, and the token MLP's width."""
    sizes.update({f"channels{i + 1}": width for i, width in enumerate(sizes.pop("channels"))})
    sizes["token_hidden"] = sizes["tokens"] * config_value(config, "token_mlp_ratio")


def _pipmn_params(config: Any) -> tuple[Param, ...]:
    widths = _widths(config)
    roles = [Param("input_skip_scale", ("features",)), Param("norm.weight", ("features",)),
             Param("norm.bias", ("features",))]
    for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        block = f"blocks.{index}"
        roles += [
            Param(f"{block}.token_norm.weight", ("tokens",)),
            Param(f"{block}.token_norm.bias", ("tokens",)),
            *linear(f"{block}.token_fc1", "token_hidden", "tokens"),
            *linear(f"{block}.token_fc2", "tokens", "token_hidden"),
            Param(f"{block}.token_conv.weight", (width_in, "1", "kernel")),
            Param(f"{block}.token_conv.bias", (width_in,)),
            *linear(f"{block}.token_fuse", "tokens", "3*tokens"),
            Param(f"{block}.token_scale", (width_in,)),
            Param(f"{block}.channel_norm.weight", (width_in,)),
            Param(f"{block}.channel_norm.bias", (width_in,)),
            *linear(f"{block}.channel_proj", width_out, width_in),
            Param(f"{block}.channel_scale", (width_out,)),
        ]
    return tuple(roles)


def _check_pipmn_size(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    if target.get("num_features") is None or target.get("num_tokens") is None:
        raise LearngeneConfigError("a PIPMN target needs num_features and num_tokens")


PIPMN = Architecture(
    family="pipmn",
    model_types=("pipmn",),
    axes={"channels": "encoder_channels", "features": "num_features", "tokens": "num_tokens",
          "kernel": "token_conv_kernel"},
    roles_hook=_pipmn_params,
    sizes_hook=_pipmn_sizes,
    target_hook=_check_pipmn_size,
    carried_fields=("token_mlp_ratio",),
    # No public checkpoints: `paper` is the PIPMN paper's widths (the config default), the others halve or double them.
    presets={
        "tiny": {"channels": [100, 200]},
        "small": {"channels": [200, 400]},
        "paper": {"channels": [400, 800]},
        "large": {"channels": [800, 1600]},
    },
    fresh=(r"^classifier\.",),
)
