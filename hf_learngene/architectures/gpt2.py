"""GPT-2. Its ``Conv1D`` stores weights as (in, out), and ``c_attn`` fuses q, k and v on the
output axis: ``3*heads*head_dim`` keeps the three blocks and every head apart while resizing."""

from typing import Any

from .base import Architecture, Param, config_value, conv1d, linear, norm

_LAYER = "h.{layer}."


def _mlp_width(config: Any, sizes: dict[str, Any]) -> None:
    """``n_inner=None`` is GPT-2's default MLP width, 4 × hidden."""
    if config_value(config, "n_inner") is None:
        sizes["intermediate"] = 4 * sizes["hidden"]


GPT2 = Architecture(
    family="gpt2",
    model_types=("gpt2",),
    axes={"layers": "n_layer", "hidden": "n_embd", "heads": "n_head", "intermediate": "n_inner",
          "vocab": "vocab_size", "positions": "n_positions"},
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
    sizes_hook=_mlp_width,
    # Shapes of the public config.json files of gpt2, gpt2-medium, gpt2-large and gpt2-xl.
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
