"""RoBERTa and XLM-RoBERTa encoders: BERT's layers, a masked-LM head of their own, and a position
table offset by the padding index (positions start at ``pad_token_id + 1``), so the position rows
and the padding index are carried over together."""

from .base import Architecture, Param, linear, norm
from .bert import AXES, EMBEDDINGS, ENCODER_LAYER

ROBERTA = Architecture(
    family="roberta",
    model_types=("roberta", "xlm-roberta"),
    axes=AXES,
    params=(
        *EMBEDDINGS,
        *ENCODER_LAYER,
        *linear("pooler.dense", "hidden", "hidden"),
        # masked-LM head; its decoder weight (and bias) are tied to the word embeddings (and lm_head.bias)
        *linear("lm_head.dense", "hidden", "hidden"),
        *norm("lm_head.layer_norm"),
        Param("lm_head.bias", ("vocab",)),
        *linear("lm_head.decoder", "vocab", "hidden"),
    ),
    carried_fields=("pad_token_id",),
    # Shapes of the public config.json files of these checkpoints.
    presets={
        "distilroberta-base": {"layers": 6, "hidden": 768, "heads": 12, "intermediate": 3072},
        "roberta-base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "roberta-large": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
        "xlm-roberta-base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "xlm-roberta-large": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
    },
    fresh=(r"^classifier\.", r"^qa_outputs\."),
    tied_embedding="embeddings.word_embeddings.weight",
    tied_copies={"lm_head.decoder.weight": "embeddings.word_embeddings.weight", "lm_head.decoder.bias": "lm_head.bias"},
)
