"""Qwen3 decoders: Llama's layout with an explicit head size (not hidden / heads) and an RMSNorm
over each head's query and key (``q_norm``, ``k_norm``), laid out like the heads' rotary halves."""

from .base import DECODER_AXES, ROTARY, Architecture, decoder_ends, llama_layer, norm

_LAYER = "layers.{layer}"

QWEN3 = Architecture(
    family="qwen3",
    model_types=("qwen3",),
    axes={**DECODER_AXES, "head_dim": "head_dim"},
    params=(
        *decoder_ends(),
        *llama_layer(_LAYER),
        *norm(f"{_LAYER}.self_attn.q_norm", bias=False, dims=ROTARY),
        *norm(f"{_LAYER}.self_attn.k_norm", bias=False, dims=ROTARY),
    ),
    layer_fields=("layer_types",),
    # Shapes of the public config.json files of the Qwen3 dense checkpoints.
    presets={
        "qwen3-0.6b": {"layers": 28, "hidden": 1024, "heads": 16, "kv_heads": 8, "head_dim": 128, "intermediate": 3072},
        "qwen3-1.7b": {"layers": 28, "hidden": 2048, "heads": 16, "kv_heads": 8, "head_dim": 128, "intermediate": 6144},
        "qwen3-4b": {"layers": 36, "hidden": 2560, "heads": 32, "kv_heads": 8, "head_dim": 128, "intermediate": 9728},
        "qwen3-8b": {"layers": 36, "hidden": 4096, "heads": 32, "kv_heads": 8, "head_dim": 128, "intermediate": 12288},
    },
    fresh=(r"^score\.", r"^qa_outputs\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)
