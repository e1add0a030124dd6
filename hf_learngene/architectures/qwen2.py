"""Qwen2 and Qwen2.5 decoders: Llama's layout, with biases on the q, k and v projections. The
config class has no ``head_dim`` field, but the modeling code reads one a config sets, so it is
the head size's field as in Llama (``hidden // heads`` where absent)."""

from .base import DECODER_AXES, Architecture, decoder_ends, llama_layer

QWEN2 = Architecture(
    family="qwen2",
    model_types=("qwen2",),
    axes={**DECODER_AXES, "head_dim": "head_dim"},
    params=(*decoder_ends(), *llama_layer("layers.{layer}")),
    layer_fields=("layer_types",),
    # Shapes of the public config.json files of the Qwen2.5 base checkpoints (Qwen2-0.5B shares the first).
    presets={
        "qwen2.5-0.5b": {"layers": 24, "hidden": 896, "heads": 14, "kv_heads": 2, "intermediate": 4864},
        "qwen2.5-1.5b": {"layers": 28, "hidden": 1536, "heads": 12, "kv_heads": 2, "intermediate": 8960},
        "qwen2.5-3b": {"layers": 36, "hidden": 2048, "heads": 16, "kv_heads": 2, "intermediate": 11008},
        "qwen2.5-7b": {"layers": 28, "hidden": 3584, "heads": 28, "kv_heads": 4, "intermediate": 18944},
    },
    fresh=(r"^score\.", r"^qa_outputs\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)
