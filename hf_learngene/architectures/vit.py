"""ViT and DeiT image classifiers. Patch size, image size and channels are carried over, so
position embeddings and the patch projection keep their grids and only their width changes."""

from typing import Any

from .base import Architecture, Param, config_value, dot_product_attention, linear, norm

_LAYER = "layers.{layer}."


def _positions(config: Any, sizes: dict[str, Any]) -> None:
    """One position per patch, plus the [CLS] token (and DeiT's distillation token)."""
    extra_tokens = 2 if config_value(config, "model_type") == "deit" else 1
    sizes["positions"] = (config_value(config, "image_size") // sizes["patch"]) ** 2 + extra_tokens


VIT = Architecture(
    family="vit",
    model_types=("vit", "deit"),
    axes={"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
          "intermediate": "intermediate_size", "in_channels": "num_channels", "patch": "patch_size"},
    params=(
        Param("embeddings.cls_token", ("1", "1", "hidden")),
        Param("embeddings.distillation_token", ("1", "1", "hidden")),
        Param("embeddings.mask_token", ("1", "1", "hidden")),
        Param("embeddings.position_embeddings", ("1", "positions", "hidden")),
        Param("embeddings.patch_embeddings.projection.weight", ("hidden", "in_channels", "patch", "patch")),
        Param("embeddings.patch_embeddings.projection.bias", ("hidden",)),
        *dot_product_attention(_LAYER + "attention.q_proj", _LAYER + "attention.k_proj",
                               _LAYER + "attention.v_proj", _LAYER + "attention.o_proj"),
        *norm(_LAYER + "layernorm_before"),
        *norm(_LAYER + "layernorm_after"),
        *linear(_LAYER + "mlp.fc1", "intermediate", "hidden"),
        *linear(_LAYER + "mlp.fc2", "hidden", "intermediate", residual=True),
        *norm("layernorm"),
        *linear("pooler.dense", "hidden", "hidden"),
    ),
    sizes_hook=_positions,
    carried_fields=("image_size",),
    # Shapes of the public config.json files of deit-{tiny,small,base}-patch16-224 and vit-large-patch16-224.
    presets={
        "tiny": {"layers": 12, "hidden": 192, "heads": 3, "intermediate": 768},
        "small": {"layers": 12, "hidden": 384, "heads": 6, "intermediate": 1536},
        "base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "large": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
    },
    fresh=(r"^classifier\.", r"^cls_classifier\.", r"^distillation_classifier\.", r"^decoder\."),
)
