"""ModernBERT encoders: fused ``Wqkv`` ([q; k; v], each in the rotary layout), a GLU MLP whose
``Wi`` stacks the input and the gate, pre-norms without biases, and layers that alternate global
and local (sliding-window) attention (``layer_types``: at a new depth, the kept blocks' kinds, or the pattern).

Layer 0 has no attention norm (its input is the normed embedding). The attention norm is still a
stacked role, from ``first_layer=1``: layer 0 is stacked as the identity norm (weight 1, bias 0),
so each target layer's attention norm comes from the source layer its attention weights come
from, as the method maps layers, and a target's layer 0 leaves its decoded norm out.
"""

from .base import CONFIG_AXES, ROTARY, Architecture, Param, linear, norm

_LAYER = "layers.{layer}"


MODERNBERT = Architecture(
    family="modernbert",
    model_types=("modernbert",),
    axes=CONFIG_AXES,
    params=(
        Param("embeddings.tok_embeddings.weight", ("vocab", "hidden")),
        *norm("embeddings.norm"),
        Param(f"{_LAYER}.attn_norm.weight", ("hidden",), first_layer=1, identity=1.0, norm="gain"),
        Param(f"{_LAYER}.attn_norm.bias", ("hidden",), first_layer=1, identity=0.0, norm="shift"),
        *linear(f"{_LAYER}.attn.Wqkv", f"3*heads*{ROTARY}", "hidden", whole_heads=True),
        *linear(f"{_LAYER}.attn.Wo", "hidden", "heads*head_dim", residual=True, whole_heads=True),
        *norm(f"{_LAYER}.mlp_norm"),
        *linear(f"{_LAYER}.mlp.Wi", "2*intermediate", "hidden"),
        *linear(f"{_LAYER}.mlp.Wo", "hidden", "intermediate", residual=True),
        *norm("final_norm"),
        # masked-LM head; the decoder's weight is tied to the token embeddings, its bias is its own
        *linear("head.dense", "hidden", "hidden"),
        *norm("head.norm"),
        *linear("decoder", "vocab", "hidden"),
    ),
    layer_fields=("layer_types",),
    # Shapes of the public config.json files of answerdotai/ModernBERT-base and -large.
    presets={
        "modernbert-base": {"layers": 22, "hidden": 768, "heads": 12, "intermediate": 1152},
        "modernbert-large": {"layers": 28, "hidden": 1024, "heads": 16, "intermediate": 2624},
    },
    fresh=(r"^classifier\.", r"^qa_outputs\."),
    tied_embedding="embeddings.tok_embeddings.weight",
    tied_copies={"decoder.weight": "embeddings.tok_embeddings.weight"},
)
