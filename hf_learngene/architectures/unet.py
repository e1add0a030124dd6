"""diffusers' ``UNet2DModel``: the width of every resolution level, conv kernels included.

The roles are generated from the config, because a UNet's parameter list follows its block list.
Each level's width is its own resizable axis (``channels0``, ``channels1``, ... for
``block_out_channels``), and the time embedding's width is ``time_embed``; kernels, image channels
and the label count are carried over. The block structure (block types, ``layers_per_block``) is
kept, so a size request names ``block_out_channels`` only (plus ``attention_head_dim`` or
``norm_num_groups`` when the new widths need them). An up-block resnet reads its input and a skip
connection concatenated on the channel axis; each part is its own role, resized on its own width.
Supported: positional time embeddings, ``conv`` down/up-samplers, ``"default"`` time shift, and the
plain and attention down/up blocks (``DownBlock2D``, ``AttnDownBlock2D``, ``UpBlock2D``,
``AttnUpBlock2D``) with a ``UNetMidBlock2D``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import Architecture, Param, concatenated, config_value, linear

_BLOCK_TYPES = {"DownBlock2D", "AttnDownBlock2D", "UpBlock2D", "AttnUpBlock2D"}


def _channels(config: Any) -> list[str]:
    return [f"channels{i}" for i in range(len(config_value(config, "block_out_channels")))]


def _unet_sizes(config: Any, sizes: dict[str, Any]) -> None:
    """Each level's width as its own axis, the time embedding's width, the conv kernel."""
    widths = sizes.pop("channels")
    sizes.update(zip(_channels(config), widths))
    sizes["time_embed"] = config_value(config, "time_embedding_dim") or 4 * widths[0]
    sizes["classes"] = config_value(config, "num_class_embeds") or 0
    sizes["kernel"] = 3


def _conv(prefix: str, out_dims: str, in_dims: tuple[str, ...], kernel: str = "kernel") -> tuple[Param, ...]:
    """A conv's weight and bias; ``in_dims`` has several parts when its input is a concatenation."""
    weight = Param(f"{prefix}.weight", (out_dims, "", kernel, kernel), fan_in=1)
    return (*concatenated(weight, 1, in_dims), Param(f"{prefix}.bias", (out_dims,)))


def _group_norm(prefix: str, dims: tuple[str, ...]) -> tuple[Param, ...]:
    return tuple(p for role in ("weight", "bias") for p in concatenated(Param(f"{prefix}.{role}", ("",)), 0, dims))


def _resnet(prefix: str, in_dims: tuple[str, ...], out: str, in_widths: list[int], out_width: int) -> tuple[Param, ...]:
    roles = (
        *_group_norm(f"{prefix}.norm1", in_dims),
        *_conv(f"{prefix}.conv1", out, in_dims),
        *linear(f"{prefix}.time_emb_proj", out, "time_embed"),
        *_group_norm(f"{prefix}.norm2", (out,)),
        *_conv(f"{prefix}.conv2", out, (out,)),
    )
    if sum(in_widths) != out_width:  # diffusers adds a 1×1 shortcut exactly when the widths differ
        roles += _conv(f"{prefix}.conv_shortcut", out, in_dims, kernel="1")
    return roles


def _attention(prefix: str, width: str) -> tuple[Param, ...]:
    return (
        *_group_norm(f"{prefix}.group_norm", (width,)),
        *linear(f"{prefix}.to_q", width, width),
        *linear(f"{prefix}.to_k", width, width),
        *linear(f"{prefix}.to_v", width, width),
        *linear(f"{prefix}.to_out.0", width, width),
    )


def _unet_params(config: Any) -> tuple[Param, ...]:
    unsupported = [t for t in (*config.down_block_types, *config.up_block_types) if t not in _BLOCK_TYPES]
    if unsupported or config.mid_block_type not in ("UNetMidBlock2D", None):
        raise LearngeneConfigError(
            f"the UNet2DModel table covers the blocks {', '.join(sorted(_BLOCK_TYPES))} and UNetMidBlock2D; this "
            f"model has {', '.join(unsupported or [config.mid_block_type])}"
        )
    axes, widths = _channels(config), list(config.block_out_channels)
    roles = [
        *_conv("conv_in", axes[0], ("in_channels",)),
        *linear("time_embedding.linear_1", "time_embed", axes[0]),
        *linear("time_embedding.linear_2", "time_embed", "time_embed"),
        *_group_norm("conv_norm_out", (axes[0],)),
        *_conv("conv_out", "out_channels", (axes[0],)),
    ]
    if config.num_class_embeds:
        roles.append(Param("class_embedding.weight", ("classes", "time_embed")))
    last = len(axes) - 1
    for i, block_type in enumerate(config.down_block_types):
        prefix = f"down_blocks.{i}"
        for j in range(config.layers_per_block):
            source = axes[i - 1] if (j == 0 and i > 0) else axes[i]
            width_in = widths[i - 1] if (j == 0 and i > 0) else widths[i]
            roles += _resnet(f"{prefix}.resnets.{j}", (source,), axes[i], [width_in], widths[i])
            if block_type.startswith("Attn"):
                roles += _attention(f"{prefix}.attentions.{j}", axes[i])
        if i < last:
            roles += _conv(f"{prefix}.downsamplers.0.conv", axes[i], (axes[i],))
    for j in range(2):
        roles += _resnet(f"mid_block.resnets.{j}", (axes[last],), axes[last], [widths[last]], widths[last])
    if config.add_attention and config.mid_block_type is not None:
        roles += _attention("mid_block.attentions.0", axes[last])
    reversed_axes, reversed_widths = axes[::-1], widths[::-1]
    for i, block_type in enumerate(config.up_block_types):
        prefix = f"up_blocks.{i}"
        out, previous = reversed_axes[i], reversed_axes[max(i - 1, 0)]
        skip_last = reversed_axes[min(i + 1, last)]
        for j in range(config.layers_per_block + 1):
            skip = skip_last if j == config.layers_per_block else out
            source = previous if j == 0 else out
            width_of = dict(zip(reversed_axes, reversed_widths))
            roles += _resnet(f"{prefix}.resnets.{j}", (source, skip), out, [width_of[source], width_of[skip]],
                             width_of[out])
            if block_type.startswith("Attn"):
                roles += _attention(f"{prefix}.attentions.{j}", out)
        if i < last:
            roles += _conv(f"{prefix}.upsamplers.0.conv", out, (out,))
    return tuple(roles)


def _check_unet_size(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    """Widths the UNet's group norms and attention heads divide, and the variants the table covers."""
    widths = target["block_out_channels"]
    groups = target.get("norm_num_groups") or 32
    if any(w % groups for w in widths):
        raise LearngeneConfigError(
            f"every width in block_out_channels {list(widths)} must be divisible by norm_num_groups={groups}; "
            "choose multiples of it or pass another norm_num_groups"
        )
    head_dim = target.get("attention_head_dim")
    attention_widths = [w for w, t in zip(widths, target["down_block_types"]) if t.startswith("Attn")]
    if head_dim and any(w % head_dim for w in attention_widths + [widths[-1]]):
        raise LearngeneConfigError(
            f"the attention widths {attention_widths + [widths[-1]]} must be divisible by attention_head_dim="
            f"{head_dim}; choose multiples of it or pass another attention_head_dim"
        )
    if target.get("time_embedding_type", "positional") != "positional":
        raise LearngeneConfigError("the UNet2DModel table covers time_embedding_type='positional' only")
    if target.get("resnet_time_scale_shift", "default") != "default":
        raise LearngeneConfigError("the UNet2DModel table covers resnet_time_scale_shift='default' only")


UNET = Architecture(
    family="unet",
    model_types=("UNet2DModel",),
    library="diffusers",
    axes={"channels": "block_out_channels", "in_channels": "in_channels", "out_channels": "out_channels"},
    roles_hook=_unet_params,
    sizes_hook=_unet_sizes,
    target_hook=_check_unet_size,
    carried_fields=(
        "sample_size", "num_class_embeds", "layers_per_block", "down_block_types", "up_block_types", "mid_block_type",
    ),
)
