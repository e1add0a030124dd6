"""diffusers' ``DiTTransformer2DModel`` (class-conditional DiT with adaLN-Zero blocks).

Each block of diffusers' DiT has its own timestep and label embedding (inside ``norm1.emb``), so
those are layered roles like the attention and MLP weights. The MLP width is fixed by diffusers at
4 × hidden, and the hidden size is ``heads × head_dim``: a size request names ``layers``, ``heads``
and ``head_dim`` (or ``hidden``, from which the head size follows). Patch size, image size, channels,
label count and the 256 sinusoidal timestep frequencies are carried over.
"""

from ..errors import LearngeneConfigError
from .base import Architecture, Param, linear

_LAYER = "transformer_blocks.{layer}."


def _dit_axis_sizes(config) -> dict[str, int]:
    hidden = config.num_attention_heads * config.attention_head_dim
    return {
        "layers": config.num_layers,
        "hidden": hidden,
        "heads": config.num_attention_heads,
        "head_dim": config.attention_head_dim,
        "intermediate": 4 * hidden,
        "channels": config.in_channels,
        "out_channels": config.out_channels or config.in_channels,
        "patch": config.patch_size,
        "classes": (config.num_embeds_ada_norm or 0) + 1,  # the last row is the "no label" embedding
        "frequencies": 256,
    }


def _check_dit_size(target: dict) -> None:
    if target.get("norm_type") != "ada_norm_zero":
        raise LearngeneConfigError(
            f"the DiT table covers norm_type='ada_norm_zero' (class-conditional DiT), not {target.get('norm_type')!r}"
        )


DIT = Architecture(
    family="dit",
    model_types=("DiTTransformer2DModel",),
    library="diffusers",
    params=(
        Param("pos_embed.proj.weight", ("hidden", "channels", "patch", "patch")),
        Param("pos_embed.proj.bias", ("hidden",)),
        *linear(_LAYER + "norm1.emb.timestep_embedder.linear_1", "hidden", "frequencies"),
        *linear(_LAYER + "norm1.emb.timestep_embedder.linear_2", "hidden", "hidden"),
        Param(_LAYER + "norm1.emb.class_embedder.embedding_table.weight", ("classes", "hidden")),
        *linear(_LAYER + "norm1.linear", "6*hidden", "hidden"),
        *linear(_LAYER + "attn1.to_q", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attn1.to_k", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attn1.to_v", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attn1.to_out.0", "hidden", "heads*head_dim", residual=True),
        *linear(_LAYER + "ff.net.0.proj", "intermediate", "hidden"),
        *linear(_LAYER + "ff.net.2", "hidden", "intermediate", residual=True),
        *linear("proj_out_1", "2*hidden", "hidden"),
        *linear("proj_out_2", "patch*patch*out_channels", "hidden"),
    ),
    size_fields=None,
    size_aliases={"layers": "num_layers", "heads": "num_attention_heads", "head_dim": "attention_head_dim"},
    check_size=_check_dit_size,
    axis_sizes=_dit_axis_sizes,
    carried_fields=("in_channels", "out_channels", "patch_size", "sample_size", "num_embeds_ada_norm"),
    # The DiT paper's model sizes (Peebles & Xie, 2023): DiT-S/B/L/XL.
    presets={
        "S": {"layers": 12, "heads": 6, "head_dim": 64},
        "B": {"layers": 12, "heads": 12, "head_dim": 64},
        "L": {"layers": 24, "heads": 16, "head_dim": 64},
        "XL": {"layers": 28, "heads": 16, "head_dim": 72},
    },
)
