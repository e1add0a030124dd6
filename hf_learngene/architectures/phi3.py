"""Phi-3 and Phi-4-mini decoders (``model_type == "phi3"``): Llama's layers with two fused
projections. ``qkv_proj`` stacks q, k and v on its output axis and ``gate_up_proj`` stacks the gate
and up projections; each part is resized on its own axes (q and k in the rotary layout, which
also covers Phi-4-mini's partial rotary), and the parts are stacked again when a model is built.
The config class has no ``head_dim`` field, but the modeling code reads one a config sets, so it
is the head size's field as in Llama (``hidden // heads`` where absent)."""

from .base import DECODER_AXES, ROTARY, Architecture, Param, concatenated, decoder_ends, linear, norm

_LAYER = "layers.{layer}"

PHI3 = Architecture(
    family="phi3",
    model_types=("phi3",),
    axes={**DECODER_AXES, "head_dim": "head_dim"},
    params=(
        *decoder_ends(),
        *concatenated(Param(f"{_LAYER}.self_attn.qkv_proj.weight", ("", "hidden"), fan_in=1, whole_heads=True), 0,
                      (f"heads*{ROTARY}", f"kv_heads*{ROTARY}", "kv_heads*head_dim")),
        *linear(f"{_LAYER}.self_attn.o_proj", "hidden", "heads*head_dim", bias=False, residual=True, whole_heads=True),
        *linear(f"{_LAYER}.mlp.gate_up_proj", "2*intermediate", "hidden", bias=False),
        *linear(f"{_LAYER}.mlp.down_proj", "hidden", "intermediate", bias=False, residual=True),
        *norm(f"{_LAYER}.input_layernorm", bias=False),
        *norm(f"{_LAYER}.post_attention_layernorm", bias=False),
    ),
    # Shapes of the public config.json files of Phi-3-mini-4k, Phi-3-medium-4k (Phi-4 shares it) and Phi-4-mini.
    presets={
        "phi-3-mini": {"layers": 32, "hidden": 3072, "heads": 32, "kv_heads": 32, "intermediate": 8192},
        "phi-3-medium": {"layers": 40, "hidden": 5120, "heads": 40, "kv_heads": 10, "intermediate": 17920},
        "phi-4-mini": {"layers": 32, "hidden": 3072, "heads": 24, "kv_heads": 8, "intermediate": 8192},
    },
    fresh=(r"^score\.", r"^classifier\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)
