"""GPT-NeoX and Pythia decoders. ``query_key_value`` fuses q, k and v per head (its rows are
heads × [q; k; v] × head size, so ``heads*3*...`` keeps each head's three blocks apart), rotary
covers a part of each head only (Pythia's 25%; the rotary layout keeps its halves and the rest
apart), attention and MLP read the same input (parallel residual) and ``embed_out`` (``lm_head``
in transformers 5) is untied.

The config class has no ``head_dim`` field, but the rotary embedding reads one a config sets,
while the attention always splits the width into ``hidden // heads``: ``head_dim`` is the head
size's field (so a source's follows a width change) and must stay ``hidden // heads``."""

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import CONFIG_AXES, ROTARY, Architecture, Param, linear, norm

_LAYER = "layers.{layer}"


def _head_size_is_the_width_per_head(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    head_dim = target.get("head_dim")
    per_head = target["hidden_size"] // target["num_attention_heads"]
    if head_dim is not None and head_dim != per_head:
        raise LearngeneConfigError(
            f"head_dim={head_dim} differs from hidden_size // num_attention_heads = {per_head}: GPT-NeoX's attention "
            "always splits the width into heads of hidden / heads; leave head_dim out of the size request, or choose "
            "the width and head count that give the head size"
        )


GPT_NEOX = Architecture(
    family="gpt_neox",
    model_types=("gpt_neox",),
    axes={**CONFIG_AXES, "head_dim": "head_dim"},
    params=(
        Param("embed_in.weight", ("vocab", "hidden")),
        *norm(f"{_LAYER}.input_layernorm"),
        *norm(f"{_LAYER}.post_attention_layernorm"),
        *linear(f"{_LAYER}.attention.query_key_value", f"heads*3*{ROTARY}", "hidden", whole_heads=True),
        *linear(f"{_LAYER}.attention.dense", "hidden", "heads*head_dim", residual=True, whole_heads=True),
        *linear(f"{_LAYER}.mlp.dense_h_to_4h", "intermediate", "hidden"),
        *linear(f"{_LAYER}.mlp.dense_4h_to_h", "hidden", "intermediate", residual=True),
        *norm("final_layer_norm"),
        *linear("lm_head", "vocab", "hidden", bias=False),
    ),
    # Shapes of the Pythia suite (EleutherAI/pythia models/*.yml; intermediate is GPT-NeoX's 4 × hidden).
    presets={
        "pythia-14m": {"layers": 6, "hidden": 128, "heads": 4, "intermediate": 512},
        "pythia-70m": {"layers": 6, "hidden": 512, "heads": 8, "intermediate": 2048},
        "pythia-160m": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "pythia-410m": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
        "pythia-1b": {"layers": 16, "hidden": 2048, "heads": 8, "intermediate": 8192},
        "pythia-1.4b": {"layers": 24, "hidden": 2048, "heads": 16, "intermediate": 8192},
        "pythia-2.8b": {"layers": 32, "hidden": 2560, "heads": 32, "intermediate": 10240},
        "pythia-6.9b": {"layers": 32, "hidden": 4096, "heads": 32, "intermediate": 16384},
    },
    target_hook=_head_size_is_the_width_per_head,
    fresh=(r"^score\.", r"^classifier\.", r"^qa_outputs\."),
    tied_embedding="embed_in.weight",
    tied_copies={"lm_head.weight": "embed_in.weight"},
)
