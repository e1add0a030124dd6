"""Llama-family decoders: grouped-query attention (``kv_heads`` ≤ ``heads``), gated MLP,
RMSNorm, tied or untied embeddings.

Rotary embeddings pair dimension ``i`` of a head with ``i + head_dim/2``; q and k rows are
therefore written ``heads*2*half_head_dim`` so the two rotary halves are resized separately
and never blended into each other. Heads are whole units here: the attention roles carry the
number of query heads per key/value head, which depends on the config, so the roles are made
per config (``params_for``).
"""

from functools import lru_cache

from .base import Architecture, Param, SizeFields, linear, norm

_LAYER = "layers.{layer}."


def _llama_axis_sizes(config) -> dict[str, int]:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "kv_heads": config.num_key_value_heads or config.num_attention_heads,
        "head_dim": head_dim,
        "half_head_dim": head_dim // 2,
        "intermediate": config.intermediate_size,
        "vocab": config.vocab_size,
    }


@lru_cache(maxsize=16)
def _llama_roles(head_groups: int) -> tuple[Param, ...]:
    """The roles of a Llama whose key/value heads each serve ``head_groups`` query heads. The
    attention roles carry that number, so that methods which select heads keep every query head
    with its key/value head (a table entry alone cannot say it: it depends on the config)."""

    def attention(prefix: str, out_dims: str, in_dims: str, residual: bool = False) -> Param:
        """A bias-free ``nn.Linear`` of the attention."""
        return Param(f"{prefix}.weight", (out_dims, in_dims), fan_in=1, writes_residual=residual,
                     head_groups=head_groups)

    return (
        Param("embed_tokens.weight", ("vocab", "hidden")),
        attention(_LAYER + "self_attn.q_proj", "heads*2*half_head_dim", "hidden"),
        attention(_LAYER + "self_attn.k_proj", "kv_heads*2*half_head_dim", "hidden"),
        attention(_LAYER + "self_attn.v_proj", "kv_heads*head_dim", "hidden"),
        attention(_LAYER + "self_attn.o_proj", "hidden", "heads*head_dim", residual=True),
        *linear(_LAYER + "mlp.gate_proj", "intermediate", "hidden", bias=False),
        *linear(_LAYER + "mlp.up_proj", "intermediate", "hidden", bias=False),
        *linear(_LAYER + "mlp.down_proj", "hidden", "intermediate", bias=False, residual=True),
        *norm(_LAYER + "input_layernorm", bias=False),
        *norm(_LAYER + "post_attention_layernorm", bias=False),
        *norm("norm", bias=False),
        # only when not tied to embed_tokens: an nn.Linear reading the hidden axis, so that is its fan-in
        *linear("lm_head", "vocab", "hidden", bias=False),
    )


def _llama_params(config) -> tuple[Param, ...]:
    sizes = _llama_axis_sizes(config)
    return _llama_roles(max(1, sizes["heads"] // sizes["kv_heads"]))


LLAMA = Architecture(
    family="llama",
    model_types=("llama", "mistral"),
    params=(),
    params_for=_llama_params,
    size_fields=SizeFields(
        layers="num_hidden_layers",
        hidden="hidden_size",
        heads="num_attention_heads",
        intermediate="intermediate_size",
        kv_heads="num_key_value_heads",
    ),
    axis_sizes=_llama_axis_sizes,
    carried_fields=("vocab_size",),
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
