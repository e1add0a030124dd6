"""GPT-2. Its ``Conv1D`` stores weights as (in, out), and ``c_attn`` fuses q, k and v on the
output axis: ``3*heads*head_dim`` keeps the three blocks and every head apart while resizing."""

from .base import Architecture, Param, SizeFields, conv1d, linear, norm

_LAYER = "h.{layer}."


def _gpt2_axis_sizes(config) -> dict[str, int]:
    return {
        "layers": config.n_layer,
        "hidden": config.n_embd,
        "heads": config.n_head,
        "head_dim": config.n_embd // config.n_head,
        "intermediate": config.n_inner if config.n_inner is not None else 4 * config.n_embd,
        "vocab": config.vocab_size,
        "positions": config.n_positions,
    }


GPT2 = Architecture(
    family="gpt2",
    model_types=("gpt2",),
    params=(
        Param("wte.weight", ("vocab", "hidden")),
        Param("wpe.weight", ("positions", "hidden")),
        *norm(_LAYER + "ln_1"),
        *conv1d(_LAYER + "attn.c_attn", "hidden", "3*heads*head_dim"),
        *conv1d(_LAYER + "attn.c_proj", "heads*head_dim", "hidden", residual=True),
        *norm(_LAYER + "ln_2"),
        *conv1d(_LAYER + "mlp.c_fc", "hidden", "intermediate"),
        *conv1d(_LAYER + "mlp.c_proj", "intermediate", "hidden", residual=True),
        *norm("ln_f"),
        # only when not tied to wte: an nn.Linear reading the hidden axis, so that is its fan-in
        *linear("lm_head", "vocab", "hidden", bias=False),
    ),
    size_fields=SizeFields(layers="n_layer", hidden="n_embd", heads="n_head", intermediate="n_inner"),
    axis_sizes=_gpt2_axis_sizes,
    carried_fields=("vocab_size", "n_positions"),
    presets={
        "small": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
        "medium": {"layers": 24, "hidden": 1024, "heads": 16, "intermediate": 4096},
        "large": {"layers": 36, "hidden": 1280, "heads": 20, "intermediate": 5120},
        "xl": {"layers": 48, "hidden": 1600, "heads": 25, "intermediate": 6400},
    },
    fresh=(r"^score\.", r"^qa_outputs\.", r"^multiple_choice_head\."),
    tied_embedding="wte.weight",
    tied_copies={"lm_head.weight": "wte.weight"},
)
