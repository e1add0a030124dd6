"""Gemma 2 and Gemma 3 (text) decoders.

Both have an explicit head size, RMSNorms that scale by ``1 + weight`` (a zero weight is the
identity: every rescaling policy keeps a norm's source mean, so resized norms stay centred where
the source's are), a norm after each sublayer as well as before it ("sandwich" norms), and word
embeddings the model multiplies by √hidden (``scaled_by``: a function-preserving build divides
them by the growth of that factor). Gemma 3 adds an RMSNorm over each head's query and key. The
attention scale ``query_pre_attn_scalar`` is the source's times the growth of the head size (so
the target's head size where the source's is its head size, and unchanged where the head size
is); at a new depth local and global layers follow the kept blocks (or the pattern, where blocks
are mixed).
"""

from dataclasses import replace
from fractions import Fraction
from typing import Any, Mapping

from transformers.utils import logging

from .base import DECODER_AXES, ROTARY, Architecture, Param, decoder_ends, llama_layer, norm

logger = logging.get_logger(__name__)

_LAYER = "layers.{layer}"


def _attention_scale(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    """``query_pre_attn_scalar`` is the head size in most Gemma checkpoints and hidden / heads in the
    27B ones. A target carries the source's, times target / source head size (unless it names one):
    the head size where the source's is the head size, and the source's own where the head size is
    kept, whatever the width or head count. Following hidden / heads instead would change every
    attention logit of a width- or heads-only build (27B: 144 at hidden 4608, 32 heads of 128). The
    config takes an integer: a ratio that gives none is rounded, with a warning."""
    if "query_pre_attn_scalar" in asked:
        return
    scalar = Fraction(source["query_pre_attn_scalar"]) * Fraction(target["head_dim"], source["head_dim"])
    target["query_pre_attn_scalar"] = round(scalar)  # the config takes an integer
    if scalar.denominator != 1:
        logger.warning(
            f"query_pre_attn_scalar {source['query_pre_attn_scalar']} at head size {source['head_dim']} would be "
            f"{float(scalar):g} at head size {target['head_dim']}; the config takes an integer, so the build uses "
            f"{round(scalar)} and its attention logits differ slightly from the source's. Pass query_pre_attn_scalar "
            "to choose it"
        )


GEMMA2 = Architecture(
    family="gemma2",
    model_types=("gemma2",),
    axes={**DECODER_AXES, "head_dim": "head_dim"},
    params=(
        *decoder_ends(Param("embed_tokens.weight", ("vocab", "hidden"), scaled_by="hidden")),
        *llama_layer(_LAYER),
        *norm(f"{_LAYER}.pre_feedforward_layernorm", bias=False),
        *norm(f"{_LAYER}.post_feedforward_layernorm", bias=False),
    ),
    layer_fields=("layer_types",),
    norm_gain_offset=1.0,
    target_hook=_attention_scale,
    # Shapes of the public config.json files of the Gemma 2 base checkpoints.
    presets={
        "gemma-2-2b": {"layers": 26, "hidden": 2304, "heads": 8, "kv_heads": 4, "head_dim": 256, "intermediate": 9216},
        "gemma-2-9b": {"layers": 42, "hidden": 3584, "heads": 16, "kv_heads": 8, "head_dim": 256,
                       "intermediate": 14336},
        "gemma-2-27b": {"layers": 46, "hidden": 4608, "heads": 32, "kv_heads": 16, "head_dim": 128,
                        "intermediate": 36864, "query_pre_attn_scalar": 144},
    },
    fresh=(r"^score\.", r"^classifier\."),
    tied_embedding="embed_tokens.weight",
    tied_copies={"lm_head.weight": "embed_tokens.weight"},
)

# Gemma 3's text decoder is Gemma 2's with an RMSNorm over each head's query and key.
GEMMA3_TEXT = replace(
    GEMMA2,
    family="gemma3_text",
    model_types=("gemma3_text",),
    params=(
        *GEMMA2.params,
        *norm(f"{_LAYER}.self_attn.q_norm", bias=False, dims=ROTARY),
        *norm(f"{_LAYER}.self_attn.k_norm", bias=False, dims=ROTARY),
    ),
    # Shapes of the public config.json files of Gemma 3 (the 4B/12B/27B ones' text_config).
    presets={
        "gemma-3-270m": {"layers": 18, "hidden": 640, "heads": 4, "kv_heads": 1, "head_dim": 256, "intermediate": 2048},
        "gemma-3-1b": {"layers": 26, "hidden": 1152, "heads": 4, "kv_heads": 1, "head_dim": 256, "intermediate": 6912},
        "gemma-3-4b": {"layers": 34, "hidden": 2560, "heads": 8, "kv_heads": 4, "head_dim": 256, "intermediate": 10240},
        "gemma-3-12b": {"layers": 48, "hidden": 3840, "heads": 16, "kv_heads": 8, "head_dim": 256,
                        "intermediate": 15360},
        "gemma-3-27b": {"layers": 62, "hidden": 5376, "heads": 32, "kv_heads": 16, "head_dim": 128,
                        "intermediate": 21504, "query_pre_attn_scalar": 168},
    },
)
