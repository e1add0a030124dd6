"""Mixtral sparse mixture-of-experts decoders, with the number of experts as a resizable axis.

transformers 5 stores each block's experts as two 3-D parameters, ``gate_up_proj`` (experts ×
[gate; up] × hidden) and ``down_proj`` (experts × hidden × intermediate), beside the router
``gate`` (experts × hidden). All three carry the ``experts`` axis, so a method resizes the experts
as it resizes any width: fewer experts (``size={"experts": 4}``: FRONT/BoT blend neighbouring
experts, weight selection keeps evenly spaced ones) or more (a one-expert model grown to eight
copies computes the same function, as in sparse upcycling).
"""

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import DECODER_AXES, Architecture, Param, decoder_ends, norm, rotary_attention

_LAYER = "layers.{layer}"


def _top_k_within_experts(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    experts, top_k = target["num_local_experts"], target["num_experts_per_tok"]
    if top_k > experts:
        raise LearngeneConfigError(
            f"num_experts_per_tok={top_k} experts per token cannot exceed the {experts} experts asked for; pass "
            f"num_experts_per_tok={experts} (or fewer) with the size, or ask for at least {top_k} experts"
        )


MIXTRAL = Architecture(
    family="mixtral",
    model_types=("mixtral",),
    axes={**DECODER_AXES, "head_dim": "head_dim", "experts": "num_local_experts"},
    params=(
        *decoder_ends(),
        *rotary_attention(f"{_LAYER}.self_attn"),
        Param(f"{_LAYER}.mlp.gate.weight", ("experts", "hidden"), fan_in=1),
        Param(f"{_LAYER}.mlp.experts.gate_up_proj", ("experts", "2*intermediate", "hidden"), fan_in=2),
        Param(f"{_LAYER}.mlp.experts.down_proj", ("experts", "hidden", "intermediate"), fan_in=2, writes_residual=True),
        *norm(f"{_LAYER}.input_layernorm", bias=False),
        *norm(f"{_LAYER}.post_attention_layernorm", bias=False),
    ),
    target_hook=_top_k_within_experts,
    # Shapes of the public config.json files of Mixtral-8x7B and Mixtral-8x22B.
    presets={
        "mixtral-8x7b": {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "intermediate": 14336,
                         "experts": 8},
        "mixtral-8x22b": {"layers": 56, "hidden": 6144, "heads": 48, "kv_heads": 8, "intermediate": 16384,
                          "experts": 8},
    },
    fresh=(r"^score\.", r"^qa_outputs\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)
