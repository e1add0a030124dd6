"""Mixtral sparse mixture-of-experts decoders, with the number of experts as a resizable axis.

transformers 5 stores each block's experts as two 3-D parameters, ``gate_up_proj`` (experts ×
[gate; up] × hidden) and ``down_proj`` (experts × hidden × intermediate), beside the router
``gate`` (experts × hidden). All three carry the ``experts`` axis, so a method resizes the experts
as it resizes any width: fewer experts (``size={"experts": 4}``: FRONT/BoT blend neighbouring
experts, weight selection keeps evenly spaced ones) or more (FRONT and BoT grow a one-expert model
to eight copies, as in sparse upcycling; HyperCloning and stack do not change the experts).

Growing the experts by a whole factor ``k`` copies each expert ``k`` times, and the router then
picks copies of one expert among its top ``num_experts_per_tok``: the target's
``num_experts_per_tok`` is the source's × ``k`` (the copies share each expert's weight, so the
model computes the source's function with a function-preserving build), unless the request sets
it, which is kept with a warning that the function is then not the source's.
"""

from typing import Any, Mapping

from transformers.utils import logging

from ..errors import LearngeneConfigError
from .base import DECODER_AXES, Architecture, Param, decoder_ends, norm, rotary_attention

logger = logging.get_logger(__name__)

_LAYER = "layers.{layer}"


def _top_k_within_experts(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    source_experts, source_top_k = source["num_local_experts"], source["num_experts_per_tok"]
    experts = target["num_local_experts"]
    if experts > source_experts and experts % source_experts == 0:
        k = experts // source_experts
        if "num_experts_per_tok" not in asked:
            target["num_experts_per_tok"] = source_top_k * k
            logger.info(
                f"{source_experts} → {experts} experts copies each expert {k}×: building with num_experts_per_tok="
                f"{source_top_k * k} (the source's {source_top_k} × {k}), so that each token meets the source's "
                "experts with their weights; pass num_experts_per_tok to choose another"
            )
        elif target["num_experts_per_tok"] != source_top_k * k:
            logger.warning(
                f"num_experts_per_tok={target['num_experts_per_tok']} with {source_experts} → {experts} experts: the "
                f"experts are {k} copies of each source expert, so the router picks copies of one expert and the "
                f"model does not compute the source's function; num_experts_per_tok={source_top_k * k} (the "
                f"source's {source_top_k} × {k}, the default) keeps it"
            )
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
