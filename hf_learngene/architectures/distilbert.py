"""DistilBERT encoders, with their own config names (``dim``, ``n_layers``, ``n_heads``,
``hidden_dim``) and module names."""

from typing import Any, Mapping

from ..errors import LearngeneConfigError
from .base import Architecture, Param, dot_product_attention, linear, norm

_LAYER = "transformer.layer.{layer}."


def _fixed_positions(target: dict[str, Any], source: Mapping[str, Any], asked: set[str]) -> None:
    """Sinusoidal position embeddings are a fixed function of the width, not a signal to resize."""
    if target.get("sinusoidal_pos_embds") and target["dim"] != source["dim"]:
        raise LearngeneConfigError(
            f"this DistilBERT has sinusoidal position embeddings (sinusoidal_pos_embds=True), a fixed table for its "
            f"width {source['dim']}; keep dim={source['dim']} (layers, heads and hidden_dim can change)"
        )


DISTILBERT = Architecture(
    family="distilbert",
    model_types=("distilbert",),
    axes={"layers": "n_layers", "hidden": "dim", "heads": "n_heads", "intermediate": "hidden_dim",
          "vocab": "vocab_size", "positions": "max_position_embeddings"},
    params=(
        Param("embeddings.word_embeddings.weight", ("vocab", "hidden")),
        Param("embeddings.position_embeddings.weight", ("positions", "hidden")),
        *norm("embeddings.LayerNorm"),
        *dot_product_attention(_LAYER + "attention.q_lin", _LAYER + "attention.k_lin",
                               _LAYER + "attention.v_lin", _LAYER + "attention.out_lin"),
        *norm(_LAYER + "sa_layer_norm"),
        *linear(_LAYER + "ffn.lin1", "intermediate", "hidden"),
        *linear(_LAYER + "ffn.lin2", "hidden", "intermediate", residual=True),
        *norm(_LAYER + "output_layer_norm"),
        # masked-LM head; the projector's weight is tied to the word embeddings, its bias is its own
        *linear("vocab_transform", "hidden", "hidden"),
        *norm("vocab_layer_norm"),
        *linear("vocab_projector", "vocab", "hidden"),
    ),
    target_hook=_fixed_positions,
    carried_fields=("sinusoidal_pos_embds",),
    # Shape of distilbert-base-uncased's public config.json.
    presets={"distilbert-base": {"layers": 6, "hidden": 768, "heads": 12, "intermediate": 3072}},
    fresh=(r"^pre_classifier\.", r"^classifier\.", r"^qa_outputs\."),
    tied_embedding="embeddings.word_embeddings.weight",
    tied_copies={"vocab_projector.weight": "embeddings.word_embeddings.weight"},
)
