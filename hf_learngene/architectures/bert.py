"""BERT-family encoders (BERT, MiniLM and other ``model_type == "bert"`` checkpoints)."""

from .base import CONFIG_AXES, Architecture, Param, dot_product_attention, linear, norm

_LAYER = "encoder.layer.{layer}."

# The post-LN encoder layer BERT, RoBERTa and XLM-R share.
ENCODER_LAYER = (
    *dot_product_attention(_LAYER + "attention.self.query", _LAYER + "attention.self.key",
                           _LAYER + "attention.self.value", _LAYER + "attention.output.dense"),
    *norm(_LAYER + "attention.output.LayerNorm"),
    *linear(_LAYER + "intermediate.dense", "intermediate", "hidden"),
    *linear(_LAYER + "output.dense", "hidden", "intermediate", residual=True),
    *norm(_LAYER + "output.LayerNorm"),
)
EMBEDDINGS = (
    Param("embeddings.word_embeddings.weight", ("vocab", "hidden")),
    Param("embeddings.position_embeddings.weight", ("positions", "hidden")),
    Param("embeddings.token_type_embeddings.weight", ("type_vocab", "hidden")),
    *norm("embeddings.LayerNorm"),
)
AXES = {**CONFIG_AXES, "positions": "max_position_embeddings", "type_vocab": "type_vocab_size"}

BERT = Architecture(
    family="bert",
    model_types=("bert",),
    axes=AXES,
    params=(
        *EMBEDDINGS,
        *ENCODER_LAYER,
        *linear("pooler.dense", "hidden", "hidden"),
        # masked-LM head; its decoder weight is tied to the word embeddings unless the config unties it
        *linear("cls.predictions.transform.dense", "hidden", "hidden"),
        *norm("cls.predictions.transform.LayerNorm"),
        Param("cls.predictions.bias", ("vocab",)),
        *linear("cls.predictions.decoder", "vocab", "hidden"),
    ),
    # Shapes of the public config.json files of google/bert_uncased_L-*_H-* and bert-base/large-uncased.
    presets={
        "tiny": {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512},
        "mini": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024},
        "small": {"layers": 4, "hidden": 512, "heads": 8, "intermediate": 2048},
        "medium": {"layers": 8, "hidden": 512, "heads": 8, "intermediate": 2048},
        "base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "large": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
    },
    fresh=(r"^classifier\.", r"^qa_outputs\.", r"^cls\.seq_relationship\."),
    tied_embedding="embeddings.word_embeddings.weight",
    tied_copies={"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
                 "cls.predictions.decoder.bias": "cls.predictions.bias"},
)
