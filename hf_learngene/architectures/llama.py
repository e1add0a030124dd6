"""Llama-family decoders: grouped-query attention (``kv_heads`` ≤ ``heads``), gated MLP,
RMSNorm, tied or untied embeddings.

Rotary embeddings pair dimension ``i`` of a head with ``i + head_dim/2``; q and k rows are
therefore written in the rotary layout (``heads*2*half_head_dim``) so the two rotary halves are
resized separately and never blended into each other. Heads are whole units here, each group of
query heads with its key/value head.
"""

from .base import Architecture, Param, gated_mlp, linear, norm, rotary_attention

_LAYER = "layers.{layer}."

# The axes of every Llama-style config (Qwen, Mistral, Mixtral and Gemma name theirs the same).
AXES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "head_dim": "head_dim",
    "intermediate": "intermediate_size",
    "vocab": "vocab_size",
}

LLAMA = Architecture(
    family="llama",
    model_types=("llama", "mistral"),
    axes=AXES,
    params=(
        Param("embed_tokens.weight", ("vocab", "hidden")),
        *rotary_attention(_LAYER + "self_attn"),
        *gated_mlp(_LAYER + "mlp"),
        *norm(_LAYER + "input_layernorm", bias=False),
        *norm(_LAYER + "post_attention_layernorm", bias=False),
        *norm("norm", bias=False),
        # only when not tied to embed_tokens: an nn.Linear reading the hidden axis, so that is its fan-in
        *linear("lm_head", "vocab", "hidden", bias=False),
    ),
    # Shapes of public checkpoints of this family (vocabulary stays the source's).
    presets={
        "smollm-135m": {"layers": 30, "hidden": 576, "heads": 9, "kv_heads": 3, "intermediate": 1536},
        "smollm-360m": {"layers": 32, "hidden": 960, "heads": 15, "kv_heads": 5, "intermediate": 2560},
        "tinyllama-1.1b": {"layers": 22, "hidden": 2048, "heads": 32, "kv_heads": 4, "intermediate": 5632},
        "llama-2-7b": {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 32, "intermediate": 11008},
    },
    fresh=(r"^score\.", r"^qa_outputs\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)
