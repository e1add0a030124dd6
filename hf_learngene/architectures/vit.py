"""ViT and DeiT image classifiers. Patch size, image size and channels are carried over, so
position embeddings and the patch projection keep their grids and only their width changes."""

from .base import Architecture, Param, SizeFields, linear, norm

_LAYER = "layers.{layer}."


def _vit_axis_sizes(config) -> dict[str, int]:
    extra_tokens = 2 if config.model_type == "deit" else 1  # [CLS] (+ DeiT's distillation token)
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "head_dim": config.hidden_size // config.num_attention_heads,
        "intermediate": config.intermediate_size,
        "positions": (config.image_size // config.patch_size) ** 2 + extra_tokens,
        "channels": config.num_channels,
        "patch": config.patch_size,
    }


VIT = Architecture(
    family="vit",
    model_types=("vit", "deit"),
    params=(
        Param("embeddings.cls_token", ("1", "1", "hidden")),
        Param("embeddings.distillation_token", ("1", "1", "hidden")),
        Param("embeddings.mask_token", ("1", "1", "hidden")),
        Param("embeddings.position_embeddings", ("1", "positions", "hidden")),
        Param("embeddings.patch_embeddings.projection.weight", ("hidden", "channels", "patch", "patch")),
        Param("embeddings.patch_embeddings.projection.bias", ("hidden",)),
        *linear(_LAYER + "attention.q_proj", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attention.k_proj", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attention.v_proj", "heads*head_dim", "hidden"),
        *linear(_LAYER + "attention.o_proj", "hidden", "heads*head_dim", residual=True),
        *norm(_LAYER + "layernorm_before"),
        *norm(_LAYER + "layernorm_after"),
        *linear(_LAYER + "mlp.fc1", "intermediate", "hidden"),
        *linear(_LAYER + "mlp.fc2", "hidden", "intermediate", residual=True),
        *norm("layernorm"),
        *linear("pooler.dense", "hidden", "hidden"),
    ),
    size_fields=SizeFields(
        layers="num_hidden_layers", hidden="hidden_size", heads="num_attention_heads", intermediate="intermediate_size"
    ),
    axis_sizes=_vit_axis_sizes,
    carried_fields=("image_size", "patch_size", "num_channels"),
    # DeiT sizes (Touvron et al., 2021); ViT-Base/Large share the base/large shapes.
    presets={
        "tiny": {"layers": 12, "hidden": 192, "heads": 3, "intermediate": 768},
        "small": {"layers": 12, "hidden": 384, "heads": 6, "intermediate": 1536},
        "base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "large": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
    },
    fresh=(r"^classifier\.", r"^cls_classifier\.", r"^distillation_classifier\.", r"^decoder\."),
)
