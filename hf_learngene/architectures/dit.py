"""diffusers' ``DiTTransformer2DModel`` (class-conditional DiT with adaLN-Zero blocks).

Each block of diffusers' DiT has its own timestep and label embedding (inside ``norm1.emb``), so
those are layered roles like the attention and MLP weights. The MLP width is fixed by diffusers at
4 × hidden, and the hidden size is ``heads × head_dim``: a size request names ``layers``, ``heads``
and ``head_dim`` (or ``hidden``, from which the head size follows). Patch size, image size, channels,
label count and the 256 sinusoidal timestep frequencies are carried over.
"""

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import Architecture, Param, config_value, dot_product_attention, linear

_LAYER = "transformer_blocks.{layer}."


def _dit_sizes(config: Any, sizes: dict[str, Any]) -> None:
    """The width is heads × head size; the MLP is 4 × wider; the label table has a "no label" row."""
    sizes["hidden"] = sizes["heads"] * sizes["head_dim"]
    sizes["intermediate"] = 4 * sizes["hidden"]
    sizes["out_channels"] = config_value(config, "out_channels") or sizes["in_channels"]
    sizes["classes"] = (config_value(config, "num_embeds_ada_norm") or 0) + 1
    sizes["frequencies"] = 256


def _width_to_head_size(request: dict[str, Any], source: Mapping[str, Any]) -> None:
    """A requested ``hidden`` is heads × head size: the head size follows from it."""
    if "hidden" not in request:
        return
    hidden = request.pop("hidden")
    heads = request.get("num_attention_heads", source["num_attention_heads"])
    if not isinstance(hidden, int) or hidden < 1 or not isinstance(heads, int) or heads < 1 or hidden % heads:
        raise LearngeneConfigError(f"hidden size {hidden!r} must be a positive multiple of the head count {heads}")
    request["attention_head_dim"] = hidden // heads


def _check_dit_size(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    if target.get("norm_type") != "ada_norm_zero":
        raise LearngeneConfigError(
            f"the DiT table covers norm_type='ada_norm_zero' (class-conditional DiT), not {target.get('norm_type')!r}"
        )


DIT = Architecture(
    family="dit",
    model_types=("DiTTransformer2DModel",),
    library="diffusers",
    axes={"layers": "num_layers", "heads": "num_attention_heads", "head_dim": "attention_head_dim",
          "in_channels": "in_channels", "patch": "patch_size"},
    params=(
        Param("pos_embed.proj.weight", ("hidden", "in_channels", "patch", "patch")),
        Param("pos_embed.proj.bias", ("hidden",)),
        *linear(_LAYER + "norm1.emb.timestep_embedder.linear_1", "hidden", "frequencies"),
        *linear(_LAYER + "norm1.emb.timestep_embedder.linear_2", "hidden", "hidden"),
        Param(_LAYER + "norm1.emb.class_embedder.embedding_table.weight", ("classes", "hidden")),
        *linear(_LAYER + "norm1.linear", "6*hidden", "hidden"),
        *dot_product_attention(_LAYER + "attn1.to_q", _LAYER + "attn1.to_k",
                               _LAYER + "attn1.to_v", _LAYER + "attn1.to_out.0"),
        *linear(_LAYER + "ff.net.0.proj", "intermediate", "hidden"),
        *linear(_LAYER + "ff.net.2", "hidden", "intermediate", residual=True),
        *linear("proj_out_1", "2*hidden", "hidden"),
        *linear("proj_out_2", "patch*patch*out_channels", "hidden"),
    ),
    sizes_hook=_dit_sizes,
    request_hook=_width_to_head_size,
    target_hook=_check_dit_size,
    carried_fields=("out_channels", "sample_size", "num_embeds_ada_norm"),
    # The DiT paper's model sizes (Peebles & Xie, 2023; DiT_models in facebookresearch/DiT): DiT-S/B/L/XL.
    presets={
        "S": {"layers": 12, "heads": 6, "head_dim": 64},
        "B": {"layers": 12, "heads": 12, "head_dim": 64},
        "L": {"layers": 24, "heads": 16, "head_dim": 64},
        "XL": {"layers": 28, "heads": 16, "head_dim": 72},
    },
)
