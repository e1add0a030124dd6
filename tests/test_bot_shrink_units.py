"""BoT's ``shrink="units"`` (the default): a narrower model keeps whole units on every axis (the
residual units its source's norms scale most, evenly spread ones elsewhere) rather than
low-passing neighbouring units; ``"wavelet"`` (the paper's scheme) stays an option, and growth is
the same under both."""

import pytest
import torch
import transformers

from hf_learngene import Learngene, LearngeneConfigError, get_method
from hf_learngene.learngene import canonical_state
from hf_learngene.methods import SignalSpec
from hf_learngene.methods.base import Gather
from hf_learngene.methods.bot import resize_matrix

from conftest import tiny_config, tiny_model
from test_family_tables import source_class
from test_family_tables import tiny_config as family_config
from test_family_tables import tiny_model as family_model

HIDDEN = 32
SHRUNK = {"hidden": 16, "heads": 2, "intermediate": 64}


def bert_with_gains(gains: torch.Tensor, shifts: torch.Tensor) -> transformers.BertForMaskedLM:
    """A tiny BERT (hidden 32) whose every LayerNorm has these weights and biases."""
    model = tiny_model(tiny_config("bert", layers=2, heads=4, head_dim=8, intermediate=64))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(gains)
                module.bias.copy_(shifts)
    return model


def test_units_are_ranked_by_the_magnitude_of_their_norms_weight_and_bias():
    generator = torch.Generator().manual_seed(0)
    gains = 0.5 + torch.rand(HIDDEN, generator=generator)
    shifts = torch.zeros(HIDDEN)
    gains[3], shifts[3] = 0.0, 9.0  # no gain, but a large bias: the unit the model's norms write most
    learngene = Learngene.extract(bert_with_gains(gains, shifts), method="bot", show_progress=False)
    expected = torch.argsort((gains.square() + shifts.square()).sqrt(), descending=True).tolist()
    assert learngene.hidden_ranking == tuple(expected)
    assert learngene.hidden_ranking[0] == 3


def test_a_narrower_model_keeps_the_units_with_the_largest_gains_whole():
    """With the default ``auto`` policy (``kept_variance`` when narrowing) the kept units keep their
    source weights exactly, along output and input axes alike."""
    gains = 0.5 + torch.rand(HIDDEN, generator=torch.Generator().manual_seed(1))
    source = bert_with_gains(gains, torch.zeros(HIDDEN))
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    kept = sorted(torch.argsort(gains, descending=True)[:16].tolist())
    built = canonical_state(learngene.build(SHRUNK, auto_class=transformers.BertForMaskedLM, show_progress=False))
    state = canonical_state(source)
    for name in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"):
        assert torch.allclose(built[name], state[name][:, kept], atol=1e-6), name
    for name in ("embeddings.LayerNorm.weight", "encoder.layer.1.output.LayerNorm.weight",
                 "encoder.layer.0.output.dense.bias"):
        assert torch.allclose(built[name], state[name][kept], atol=1e-6), name
    # the MLP keeps its size here: its input weights are the source's, on the kept units
    assert torch.allclose(built["encoder.layer.0.intermediate.dense.weight"],
                          state["encoder.layer.0.intermediate.dense.weight"][:, kept], atol=1e-6)
    # 4 heads of 8 → 2: heads 0 and 2 kept whole (every other one, as weight selection takes them)
    rows = [*range(0, 8), *range(16, 24)]
    assert torch.allclose(built["encoder.layer.1.attention.self.query.weight"],
                          state["encoder.layer.1.attention.self.query.weight"][rows][:, kept], atol=1e-6)
    # under "none" a kept unit of a narrowing input axis carries m/n of its weight, as split's do
    plain = canonical_state(Learngene.extract(source, method="bot", rescaling="none", show_progress=False).build(
        SHRUNK, auto_class=transformers.BertForMaskedLM, show_progress=False))
    assert torch.allclose(plain["encoder.layer.0.intermediate.dense.weight"],
                          state["encoder.layer.0.intermediate.dense.weight"][:, kept] * 0.5, atol=1e-6)


def test_the_wavelet_scheme_is_the_papers_low_pass_and_growth_is_the_same_under_both():
    gains = 0.5 + torch.rand(HIDDEN, generator=torch.Generator().manual_seed(2))
    source = bert_with_gains(gains, torch.zeros(HIDDEN))
    state = canonical_state(source)
    build = lambda options, size: canonical_state(
        Learngene.extract(source, method="bot", rescaling="none", show_progress=False, **options).build(
            size, auto_class=transformers.BertForMaskedLM, show_progress=False))
    narrow = build({"shrink": "wavelet"}, SHRUNK)
    low_pass = resize_matrix("haar", HIDDEN, 16, "split").float()  # the mean of neighbouring pairs
    name = "embeddings.word_embeddings.weight"
    assert torch.allclose(narrow[name], state[name] @ low_pass.T, atol=1e-6)
    wider = {"hidden": 48, "heads": 6, "intermediate": 64}
    by_gain, by_wavelet = build({}, wider), build({"shrink": "wavelet"}, wider)
    for name, tensor in by_gain.items():
        assert torch.equal(tensor, by_wavelet[name]), name


def test_gemma_gains_are_one_plus_the_weight():
    """Gemma's RMSNorm scales by ``1 + weight``: a weight of -1 is no gain at all, not the largest."""
    source = family_model(family_config("gemma2", layers=2, kv_heads=2))
    hidden = source.config.hidden_size
    weights = torch.linspace(-0.2, 0.2, hidden)  # gains 0.8 to 1.2
    weights[:4] = -1.0 + torch.arange(4) * 0.01  # gains near 0
    weights[4:8] = 0.5 + torch.arange(4) * 0.01  # gains near 1.5
    with torch.no_grad():
        for name, tensor in source.named_parameters():
            if name.endswith("norm.weight") and tensor.shape == (hidden,):
                tensor.copy_(weights)
    ranking = Learngene.extract(source, method="bot", show_progress=False).hidden_ranking
    assert set(ranking[:4]) == {4, 5, 6, 7} and set(ranking[-4:]) == {0, 1, 2, 3}
    built = Learngene.extract(source, method="bot", show_progress=False).build(
        {"hidden": hidden // 2}, auto_class=source_class("gemma2"), show_progress=False)
    assert built.config.hidden_size == hidden // 2


def test_whole_units_on_every_axis_and_the_hidden_ones_by_gain():
    """Without a ranking (an axis that is not the hidden one, or a model with no norm over it) the
    kept units are evenly spread; with one, the highest-ranked; along an input axis each carries
    m/n of its weight. ``shrink="wavelet"`` keeps the low-pass, and growing is never a selection."""
    bot = get_method("bot")
    plain = bot.axis_operator(SignalSpec(("intermediate",), (True,), (False,)), 0, 12, 12, 8)
    assert isinstance(plain, Gather) and plain.indices.tolist() == [0, 2, 3, 5, 6, 8, 9, 11] and plain.scale == 1
    ranking = tuple(range(11, -1, -1))
    ranked = bot.axis_operator(SignalSpec(("hidden",), (True,), (True,), hidden_ranking=ranking), 0, 12, 12, 6)
    assert isinstance(ranked, Gather) and ranked.indices.tolist() == [6, 7, 8, 9, 10, 11] and ranked.scale == 0.5
    wavelet = get_method("bot", shrink="wavelet")
    assert not isinstance(wavelet.axis_operator(SignalSpec(("hidden",), (True,), (False,), hidden_ranking=ranking),
                                                0, 12, 12, 6), Gather)
    assert not wavelet.ranks_hidden_units and wavelet.narrowing_policy == "source_std"
    assert not isinstance(bot.axis_operator(SignalSpec(("hidden",), (True,), (False,)), 0, 12, 12, 16), Gather)


def test_an_unknown_shrink_is_refused():
    with pytest.raises(LearngeneConfigError, match="shrink must be one of units, wavelet, got 'top'"):
        get_method("bot", shrink="top")


def test_minilm_shrunk_by_bot_keeps_its_largest_gain_units(minilm_dir):
    """On the real MiniLM: the 4L/256/4H model's word embeddings are the source's on its 256
    largest-gain units, up to the ``auto`` policy's one scale and shift of the whole tensor."""
    learngene = Learngene.extract(minilm_dir, method="bot", show_progress=False)
    source = transformers.AutoModel.from_pretrained(minilm_dir).embeddings.word_embeddings.weight.detach()
    built = learngene.build({"layers": 4, "hidden": 256, "heads": 4}, show_progress=False)
    kept = sorted(learngene.hidden_ranking[:256])
    picked, made = source[:, kept].flatten().double(), built.embeddings.word_embeddings.weight.detach().flatten().double()
    assert torch.corrcoef(torch.stack([picked, made]))[0, 1] > 0.999999


def test_fewer_larger_heads_are_whole_source_heads_side_by_side():
    """4 heads of 8 → 1 head of 16: the target head is source heads 0 and 2 side by side (their
    queries, keys, values and output columns, unchanged), not an average of heads with every
    dimension doubled; the low-pass of ``shrink="wavelet"`` stays available."""
    gains = 0.5 + torch.rand(HIDDEN, generator=torch.Generator().manual_seed(3))
    source = bert_with_gains(gains, torch.zeros(HIDDEN))
    state = canonical_state(source)
    size = {"hidden": 16, "heads": 1, "intermediate": 64}
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    built = canonical_state(learngene.build(size, auto_class=transformers.BertForMaskedLM, show_progress=False))
    kept = sorted(learngene.hidden_ranking[:16])
    rows = [*range(0, 8), *range(16, 24)]
    for role in ("query", "key", "value"):
        name = f"encoder.layer.0.attention.self.{role}.weight"
        assert torch.allclose(built[name], state[name][rows][:, kept], atol=1e-6), name
    name = "encoder.layer.1.attention.output.dense.weight"
    assert torch.allclose(built[name], state[name][kept][:, rows], atol=1e-6)
    low_pass = canonical_state(Learngene.extract(source, method="bot", shrink="wavelet", show_progress=False).build(
        size, auto_class=transformers.BertForMaskedLM, show_progress=False))
    assert not torch.allclose(low_pass["encoder.layer.0.attention.self.query.weight"],
                              built["encoder.layer.0.attention.self.query.weight"])


def test_a_grown_source_shrinks_back_to_the_one_it_was_grown_from():
    """A source grown by BoT has each unit twice, with the same norms: its copies rank after every
    distinct unit, so shrinking it back keeps one of each (the original units, exactly)."""
    gains = 0.5 + torch.rand(HIDDEN, generator=torch.Generator().manual_seed(4))
    source = bert_with_gains(gains, torch.zeros(HIDDEN))
    wide = {"hidden": 2 * HIDDEN, "heads": 8, "intermediate": 64}
    grown = Learngene.extract(source, method="bot", show_progress=False).build(
        wide, auto_class=transformers.BertForMaskedLM, show_progress=False)
    learngene = Learngene.extract(grown, method="bot", show_progress=False)
    assert sorted(unit // 2 for unit in learngene.hidden_ranking[:HIDDEN]) == list(range(HIDDEN))
    back = learngene.build({"hidden": HIDDEN, "heads": 4, "intermediate": 64},
                           auto_class=transformers.BertForMaskedLM, show_progress=False)
    name = "embeddings.word_embeddings.weight"
    assert torch.allclose(canonical_state(back)[name], canonical_state(source)[name], atol=1e-6)


def test_heads_side_by_side_only_as_whole_heads_and_alike_in_every_decode():
    """Fewer, larger heads at the same width are the source's heads side by side, exactly; a head
    size that is not a multiple of the source's is not merged (it would cut heads in two); decoding
    whole and layer by layer agree."""
    source = bert_with_gains(0.5 + torch.rand(HIDDEN, generator=torch.Generator().manual_seed(5)), torch.zeros(HIDDEN))
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    same_width = canonical_state(learngene.build({"heads": 2}, auto_class=transformers.BertForMaskedLM,
                                                 show_progress=False))
    name = "encoder.layer.0.attention.self.key.weight"
    assert torch.allclose(same_width[name], canonical_state(source)[name], atol=1e-6)
    bot = get_method("bot")
    spec = SignalSpec(("layers", "heads", "head_dim", "hidden"), (True,) * 4, (False, False, False, True))
    assert bot.regroup(spec, (3, 4, 8, 32), (3, 4, 8, 32), (3, 2, 12, 24)) is None  # 12 is not whole heads of 8
    assert bot.regroup(spec, (3, 4, 8, 32), (3, 4, 8, 32), (3, 1, 16, 24)) is not None
    stored = torch.randn(3, 4, 8, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    whole = bot.decode(stored, spec, (3, 4, 8, 32), (2, 1, 16, 24))
    layers = torch.stack([layer.clone() for layer in bot.decode_layers(stored, spec, (3, 4, 8, 32), (2, 1, 16, 24))])
    assert whole.shape == (2, 1, 16, 24) and torch.allclose(whole, layers)


def test_norms_that_say_nothing_give_no_ranking():
    """Untrained norms (every gain 1, every bias 0) rank nothing: a narrower model then keeps evenly
    spaced units, as on every other axis, not the first ones."""
    learngene = Learngene.extract(bert_with_gains(torch.ones(HIDDEN), torch.zeros(HIDDEN)), method="bot",
                                  show_progress=False)
    assert learngene.hidden_ranking is None
