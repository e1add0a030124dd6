"""FRONT's ``keep`` dict: ``head_dim`` reaches every part of a head (the rotary halves of queries, keys
and their norms as well as values and the output projection), and a name that is no axis is refused."""

import pytest
import torch
import transformers

from hf_learngene import Learngene, LearngeneConfigError, get_method

ROLES = "layers.{{layer}}.self_attn.{}"


def qwen3() -> transformers.PreTrainedModel:
    """A tiny Qwen3 (hidden 16, 4 heads of 6 in two rotary halves of 3, 2 key/value heads)."""
    config = transformers.Qwen3Config(vocab_size=61, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, head_dim=6, intermediate_size=24,
                                      max_position_embeddings=32, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("keep, per_head, per_half", [(0.5, 3, 2), (4, 4, 2)])  # a ratio, and a count per head
def test_head_dim_reaches_the_rotary_halves(keep, per_head, per_half):
    learngene = Learngene.extract(qwen3(), method="front", keep={"head_dim": keep}, show_progress=False)
    stored = lambda role: learngene.config.role(ROLES.format(role)).stored_shape
    assert stored("q_proj.weight") == (2, 4, 2, per_half, 16)
    assert stored("k_proj.weight") == (2, 2, 2, per_half, 16)
    assert stored("q_norm.weight") == stored("k_norm.weight") == (2, 2, per_half)
    assert stored("v_proj.weight") == (2, 2, per_head, 16) and stored("o_proj.weight") == (2, 16, 4, per_head)
    assert learngene.config.role("embed_tokens.weight").stored_shape == (61, 16)  # other axes keep everything


def test_a_name_that_is_no_axis_is_refused():
    with pytest.raises(LearngeneConfigError, match=r"FRONT keep names 'hiden', which is no resizable axis; valid "
                                                   r"axes: .*head_dim, heads, hidden, intermediate"):
        get_method("front", keep={"head_dim": 0.5, "hiden": 0.5})
    get_method("front", keep={"channels1": 0.5, "half_head_dim": 2})  # a UNet level, or a rotary half itself
