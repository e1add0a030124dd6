"""BoT's ``non_dyadic="split"``: the part of a ratio that is not a power of two copies or drops whole
units, and along input axes the copies share their unit's weight, so growth at any ratio keeps the
function of every linear map and elementwise activation, and kept heads stay whole."""

import json

import pytest
import torch
import transformers

from hf_learngene import Learngene, LearngeneConfig, LearngeneConfigError, get_method
from hf_learngene.methods import SignalSpec
from hf_learngene.methods.base import operator_matrix as operator_dense
from hf_learngene.methods.bot import resize_matrix

from conftest import tiny_config, tiny_model

ONE = SignalSpec(("hidden",), (True,), (False,))


def hidden_states(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True).hidden_states[-1]


@pytest.mark.parametrize("source, target", [(384, 512), (6, 8), (5, 13), (1536, 2048), (12, 8), (384, 256), (6, 4)])
def test_split_takes_whole_units_evenly(source, target):
    x = torch.randn(source, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = get_method("bot").decode(x, ONE, (source,), (target,))
    if target > source:  # Haar levels repeat every unit, the rest copies whole units: ⌊m/n⌋ or ⌈m/n⌉ copies each
        counts = torch.tensor([torch.isclose(out, value, rtol=0, atol=1e-12).sum().item() for value in x])
        assert set(counts.tolist()) <= {target // source, -(-target // source)} and counts.sum() == target
        assert counts.min() >= 1
    else:  # ratios below 2: whole units dropped, none blended, in order
        assert all((x == value).any() for value in out)
        picked = [int((x == value).nonzero()[0]) for value in out]
        assert picked == sorted(picked) and len(set(picked)) == target


def test_fan_in_shares_make_linear_maps_exact_at_any_ratio():
    for source, target in [(384, 512), (6, 8), (5, 13), (24, 40)]:
        copies = resize_matrix("haar", source, target, "split")
        shares = resize_matrix("haar", source, target, "split", fan_in=True)
        # a weight read through the shares, divided by the fan-in ratio, sees exactly the source's sum
        assert torch.allclose(shares.T @ copies / (target / source), torch.eye(source, dtype=torch.float64))


def test_power_of_two_ratios_are_the_same_in_both_schemes():
    for source, target in [(384, 768), (32, 64), (384, 192), (8, 2)]:
        assert torch.allclose(resize_matrix("haar", source, target, "split"),
                              resize_matrix("haar", source, target, "linear"))


@pytest.fixture(scope="module")
def bert():
    source = tiny_model(tiny_config("bert", layers=2, heads=4, head_dim=4, intermediate=24))
    with torch.no_grad():  # sharp attention: at init's scale every softmax is nearly uniform whatever its logits
        for name, param in source.named_parameters():
            if name.endswith(("query.weight", "key.weight")):
                param.mul_(20)
    return source.eval()


def test_split_grows_the_mlp_by_a_non_whole_ratio_keeping_the_function(bert):
    """24 → 40 MLP units (5/3): 16 units copied twice, their output weights shared by the copies."""
    grown = Learngene.extract(bert, method="bot", show_progress=False).build(
        {"intermediate": 40}, auto_class=transformers.BertModel, show_progress=False)
    assert grown.config.intermediate_size == 40
    ids = torch.randint(1, 90, (2, 6), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(hidden_states(grown, ids), hidden_states(bert, ids), atol=1e-5)
    # the paper-era linear remainder interpolates between units and does not
    linear = Learngene.extract(bert, method="bot", non_dyadic="linear", show_progress=False).build(
        {"intermediate": 40}, auto_class=transformers.BertModel, show_progress=False)
    assert not torch.allclose(hidden_states(linear, ids), hidden_states(bert, ids), atol=1e-3)


def test_split_keeps_fewer_larger_heads_whole():
    """3 heads of 4 → 2 heads of 8, hidden 12 → 16 (the 12 heads of 32 → 8 heads of 64 of MiniLM →
    8L/512/8H, small): heads 0 and 2 are kept whole, each head size copied twice with queries and
    keys divided by 2^(1/4). Fed the source's hidden states split the same way, the grown attention
    computes each kept head's context exactly (copied), and its output projection the source's with
    head 1 pruned (split)."""
    source = tiny_model(tiny_config("bert", layers=1, heads=3, head_dim=4, intermediate=24)).eval()
    with torch.no_grad():
        source.bert.encoder.layer[0].attention.self.query.weight.mul_(20)
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    grown = learngene.build({"hidden": 16, "heads": 2}, auto_class=transformers.BertModel, show_progress=False).eval()
    assert (grown.config.num_attention_heads, grown.config.hidden_size) == (2, 16)
    hidden = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(0))
    copies = resize_matrix("haar", 12, 16, "split").float()  # each of the 12 units once or twice
    before, after = source.bert.encoder.layer[0].attention, grown.encoder.layer[0].attention
    with torch.no_grad():
        context = before.self(hidden)[0].reshape(2, 5, 3, 4)
        grown_context = after.self(hidden @ copies.T)[0].reshape(2, 5, 2, 8)
        kept = context[:, :, [0, 2]].repeat_interleave(2, dim=-1)
        assert torch.allclose(grown_context, kept, atol=1e-5)
        pruned = before.output.dense.weight.clone()
        pruned[:, 4:8] = 0.0
        expected = (context.reshape(2, 5, 12) @ pruned.T + before.output.dense.bias) @ copies.T
        assert torch.allclose(after.output.dense(grown_context.reshape(2, 5, 16)), expected, atol=1e-5)


def test_a_learngene_saved_before_the_options_decodes_as_it_did(bert, tmp_path):
    """A learngene saved before ``non_dyadic`` and ``shrink`` existed builds as it was built
    then (linear, wavelet), whatever their defaults are now."""
    assert LearngeneConfig(method="bot", method_options={"wavelet": "haar", "levels": 0}).method_options == {
        "wavelet": "haar", "levels": 0, "non_dyadic": "linear", "shrink": "wavelet"}
    assert LearngeneConfig(method="bot", method_options={"non_dyadic": "split"}).method_options["non_dyadic"] == "split"
    assert LearngeneConfig(method="bot", method_options={"shrink": "units"}).method_options["shrink"] == "units"
    old_options = {"non_dyadic": "linear", "shrink": "wavelet"}
    Learngene.extract(bert, method="bot", **old_options, show_progress=False).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for name in old_options:
        del config["method_options"][name]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = Learngene.from_pretrained(tmp_path)
    assert {name: old.config.method_options[name] for name in old_options} == old_options
    size = {"hidden": 24, "heads": 4, "intermediate": 40}  # narrower: shrink applies
    torch.manual_seed(0)  # the pooler is not in the source (an MLM model): the same fresh one for both
    expected = Learngene.extract(bert, method="bot", **old_options, show_progress=False).build(
        size, auto_class=transformers.BertModel, show_progress=False)
    torch.manual_seed(0)
    built = old.build(size, auto_class=transformers.BertModel, show_progress=False)
    for (name, a), b in zip(expected.state_dict().items(), built.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_non_dyadic_scheme_it_does_not_know_is_refused():
    with pytest.raises(LearngeneConfigError, match="non_dyadic must be one of split, linear, got 'cubic'"):
        get_method("bot", non_dyadic="cubic")


def test_split_keeps_the_logits_at_a_head_size_ratio_that_is_not_a_power_of_two():
    """3 heads of 4 → 2 heads of 6 at the same width: head dimensions copied unevenly, the keys'
    copies sharing their dimension's weight, so the whole model computes the source with head 1 pruned."""
    source = tiny_model(tiny_config("bert", layers=2, heads=3, head_dim=4, intermediate=24)).eval()
    with torch.no_grad():
        for layer in source.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(20)
    learngene = Learngene.extract(source, method="bot", rescaling="preserve_function", show_progress=False)
    fewer = learngene.build({"hidden": 12, "heads": 2}, auto_class=transformers.BertModel, show_progress=False)
    assert (fewer.config.num_attention_heads, fewer.config.hidden_size) == (2, 12)
    pruned = tiny_model(tiny_config("bert", layers=2, heads=3, head_dim=4, intermediate=24))
    pruned.load_state_dict(source.state_dict())
    with torch.no_grad():
        for layer in pruned.bert.encoder.layer:
            layer.attention.output.dense.weight[:, 4:8] = 0.0
    ids = torch.randint(1, 90, (2, 6), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(hidden_states(fewer, ids), hidden_states(pruned.eval(), ids), atol=1e-5)


def test_grouped_heads_keep_the_linear_scheme_on_one_heads_axis():
    """Llama-family query heads must stay with their key/value heads: a ``heads`` axis resized on its own
    (where the grouping changes or the key/value heads get fewer) takes the linear scheme, and split
    still splits every other axis."""
    bot = get_method("bot")
    grouped = SignalSpec(("layers", "heads", "head_dim", "hidden"), (True,) * 4, (False, False, False, True),
                         head_groups=2)
    linear = resize_matrix("haar", 4, 6, "linear")
    assert torch.allclose(operator_dense(bot.axis_operator(grouped, 1, 4, 4, 6), 4), linear)
    split_hidden = operator_dense(bot.axis_operator(grouped, 3, 12, 12, 16), 12)
    assert torch.allclose(split_hidden, resize_matrix("haar", 12, 16, "split", fan_in=True))
    flat = SignalSpec(grouped.axes, grouped.resizable, grouped.inputs)
    assert torch.allclose(operator_dense(bot.axis_operator(flat, 1, 4, 4, 6), 4), resize_matrix("haar", 4, 6, "split"))


def test_a_grouped_query_model_builds_at_a_non_power_of_two_head_ratio():
    """4 query heads / 2 key-value heads → 6 / 3 on a real Llama: whole groups copied under split
    (below), the MLP's units copied too, and the model runs."""
    config = transformers.LlamaConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=24, max_position_embeddings=32,
                                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    source = transformers.LlamaForCausalLM(config)
    size = {"hidden": 24, "heads": 6, "intermediate": 40}
    builds = {scheme: Learngene.extract(source, method="bot", non_dyadic=scheme, show_progress=False).build(
        size, auto_class=transformers.LlamaForCausalLM, show_progress=False) for scheme in ("split", "linear")}
    split, linear = builds["split"], builds["linear"]
    assert (split.config.num_attention_heads, split.config.num_key_value_heads) == (6, 3)
    ids = torch.randint(1, 90, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(split(input_ids=ids).logits).all()
    # the MLP's units are copied whole under split, interpolated under linear
    assert not torch.equal(split.model.layers[0].mlp.up_proj.weight, linear.model.layers[0].mlp.up_proj.weight)


def sharp_decoder(family: str) -> transformers.PreTrainedModel:
    """A tiny grouped-query decoder (hidden 24, 4 query heads of 6, 2 key/value heads) with queries, keys
    and output head scaled up, so that attention is sharp and a query head blended or paired with another
    group's keys shows in the logits. Its width takes 6 and 8 heads (transformers' Llama checks it)."""
    fields = dict(vocab_size=61, hidden_size=24, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=24, max_position_embeddings=32, tie_word_embeddings=False, bos_token_id=0,
                  eos_token_id=0, pad_token_id=0)
    config = transformers.Qwen3Config(head_dim=6, **fields) if family == "qwen3" else transformers.LlamaConfig(**fields)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
            if any(part in name for part in ("q_proj", "k_proj", "lm_head")):
                parameter.mul_(10)
    return model.eval()


@pytest.mark.parametrize("family", ["llama", "qwen3"])
@pytest.mark.parametrize("heads, kv_heads, order", [(6, 3, [0, 1, 2, 3, 2, 3]), (8, 4, [0, 1, 0, 1, 2, 3, 2, 3])])
def test_grouped_heads_grown_by_any_ratio_keep_the_function(family, heads, kv_heads, order):
    """Grouped heads are decoded as (key/value heads × query heads per key/value head): the key/value
    axis split with the group size fixed (4 heads / 2 → 6 / 3: heads 0, 1, 2, 3, 2, 3 with key/value
    heads 0, 1, 1), so every query head keeps its keys and the output projection's shares keep the sum."""
    source = sharp_decoder(family)
    head_dim = source.config.head_dim
    learngene = Learngene.extract(source, method="bot", rescaling="preserve_function", show_progress=False)
    grown = learngene.build({"heads": heads, "kv_heads": kv_heads, "head_dim": head_dim},
                            auto_class=transformers.AutoModelForCausalLM, show_progress=False)
    assert (grown.config.num_attention_heads, grown.config.num_key_value_heads) == (heads, kv_heads)
    ids = torch.randint(2, 61, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = source(input_ids=ids).logits, grown(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    source_q = source.model.layers[0].self_attn.q_proj.weight.reshape(4, 1, -1)
    grown_q = grown.model.layers[0].self_attn.q_proj.weight.reshape(heads, -1)
    assert [int(torch.isclose(q, source_q, atol=1e-6).all(-1).nonzero()[0, 0]) for q in grown_q] == order
