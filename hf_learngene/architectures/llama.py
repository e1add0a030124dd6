"""Llama-family decoders: grouped-query attention (``kv_heads`` ≤ ``heads``), gated MLP,
RMSNorm, tied or untied embeddings.

Rotary embeddings pair dimension ``i`` of a head with ``i + head_dim/2``; q and k rows are
therefore written in the rotary layout (``heads*2*half_head_dim``) so the two rotary halves are
resized separately and never blended into each other. Heads are whole units here, each group of
query heads with its key/value head.
"""

from .base import DECODER_AXES, Architecture, decoder_ends, llama_layer

LLAMA = Architecture(
    family="llama",
    model_types=("llama", "mistral"),
    axes={**DECODER_AXES, "head_dim": "head_dim"},
    params=(*decoder_ends(), *llama_layer("layers.{layer}")),
    # Shapes of the public config.json files of SmolLM2-135M/360M, TinyLlama-1.1B and Llama-2-7b.
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
