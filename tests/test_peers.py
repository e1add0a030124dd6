"""The peer methods behind the same interface: weight selection, HyperCloning, stacking, random."""

import pytest
import torch
import transformers

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError

from conftest import tiny_config, tiny_model

torch.set_grad_enabled(True)


def hidden_states(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True).hidden_states[-1]


@pytest.fixture(scope="module")
def bert():
    return tiny_model(tiny_config("bert", layers=4, heads=4, head_dim=4, intermediate=32))


def test_weight_selection_picks_evenly_spaced_elements_and_first_layers(bert):
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    assert learngene.config.rescaling == "none"
    small = learngene.build({"layers": 2, "hidden": 8, "heads": 2, "intermediate": 16}, auto_class=type(bert),
                            show_progress=False)
    rows = torch.linspace(0, 31, 16).round().long()  # intermediate 32 → 16
    cols = torch.linspace(0, 15, 8).round().long()  # hidden 16 → 8
    source = bert.bert.encoder.layer[1].intermediate.dense.weight
    assert torch.equal(small.bert.encoder.layer[1].intermediate.dense.weight, source[rows][:, cols])
    flat = torch.linspace(0, 15, 8).round().long()  # heads × head_dim is one flat axis: 4 × 4 → 2 × 4
    query = bert.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(small.bert.encoder.layer[0].attention.self.query.weight, query[flat][:, cols])


def test_weight_selection_allows_fewer_larger_heads(bert):
    """12 × 32 → 4 × 64 in MiniLM terms: the flat head dimension shrinks though the head size grows."""
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    small = learngene.build({"hidden": 12, "heads": 2, "intermediate": 16}, auto_class=type(bert), show_progress=False)
    assert small.config.num_attention_heads == 2 and small.config.hidden_size // 2 == 6  # head size 4 → 6
    flat, cols = torch.linspace(0, 15, 12).round().long(), torch.linspace(0, 15, 12).round().long()
    value = bert.bert.encoder.layer[2].attention.self.value.weight
    assert torch.equal(small.bert.encoder.layer[2].attention.self.value.weight, value[flat][:, cols])
    output = bert.bert.encoder.layer[2].attention.output.dense.weight
    assert torch.equal(small.bert.encoder.layer[2].attention.output.dense.weight, output[cols][:, flat])


def test_weight_selection_uniform_layers(bert):
    learngene = Learngene.extract(bert, method="weight_selection", layers="uniform", show_progress=False)
    small = learngene.build({"layers": 2}, auto_class=type(bert), show_progress=False)
    assert torch.equal(small.bert.encoder.layer[1].output.dense.weight, bert.bert.encoder.layer[3].output.dense.weight)


def test_weight_selection_refuses_to_grow(bert):
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="weight_selection only shrinks: the layers axis would grow"):
        learngene.build({"layers": 6})


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_hypercloning_preserves_the_function(family):
    source = tiny_model(tiny_config(family, layers=2, heads=4, head_dim=4, intermediate=24, kv_heads=2))
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    grown = learngene.build({"hidden": 48, "heads": 12, "intermediate": 72}, auto_class=type(source),
                            show_progress=False)
    assert grown.config.num_attention_heads == 12 if family != "gpt2" else grown.config.n_head == 12
    ids = torch.randint(1, 90, (2, 6))
    before, after = hidden_states(source, ids), hidden_states(grown, ids)
    assert after.shape[-1] == 3 * before.shape[-1]
    assert torch.allclose(after, before.repeat(1, 1, 3), atol=1e-4)


def test_hypercloning_noise_breaks_symmetry_at_the_given_snr(bert):
    exact = Learngene.extract(bert, method="hypercloning", show_progress=False).build({"hidden": 32, "heads": 8})
    noisy = Learngene.extract(bert, method="hypercloning", snr_db=20, show_progress=False).build(
        {"hidden": 32, "heads": 8}
    )
    signal = exact.encoder.layer[0].intermediate.dense.weight
    noise = noisy.encoder.layer[0].intermediate.dense.weight - signal
    snr_db = 10 * torch.log10(signal.pow(2).mean() / noise.pow(2).mean()).item()
    assert 17 < snr_db < 23


@pytest.mark.parametrize(
    "size,message",
    [
        ({"hidden": 24, "heads": 6}, "whole factors only: hidden 16 → 24 is 1.5×"),
        ({"layers": 8}, "cannot change the layers axis"),
        ({"hidden": 32, "heads": 4}, "cannot change the head_dim axis"),
        ({"hidden": 8, "heads": 2}, "whole factors only"),
    ],
)
def test_hypercloning_says_what_it_cannot_do(bert, size, message):
    learngene = Learngene.extract(bert, method="hypercloning", show_progress=False)
    with pytest.raises(LearngeneConfigError, match=message):
        learngene.build(size)


@pytest.mark.parametrize("order,expected", [("interleave", [0, 0, 1, 1, 2, 2, 3, 3]), ("repeat", [0, 1, 2, 3, 0, 1, 2, 3])])
def test_stack_copies_blocks_in_order(bert, order, expected):
    learngene = Learngene.extract(bert, method="stack", order=order, show_progress=False)
    deep = learngene.build({"layers": 8}, auto_class=type(bert), show_progress=False)
    for target, source in enumerate(expected):
        assert torch.equal(deep.bert.encoder.layer[target].attention.self.key.weight,
                           bert.bert.encoder.layer[source].attention.self.key.weight)


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_stack_with_identity_copies_preserves_the_function(family):
    source = tiny_model(tiny_config(family, layers=3, heads=2, head_dim=4, intermediate=16))
    learngene = Learngene.extract(source, method="stack", identity_copies=True, show_progress=False)
    deep = learngene.build({"layers": 7}, auto_class=type(source), show_progress=False)
    ids = torch.randint(1, 90, (2, 5))
    assert torch.allclose(hidden_states(deep, ids), hidden_states(source, ids), atol=1e-5)


def test_stack_refuses_width_and_shrink(bert):
    learngene = Learngene.extract(bert, method="stack", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="stack changes depth only"):
        learngene.build({"hidden": 32, "heads": 8})
    with pytest.raises(LearngeneConfigError, match="stack only grows depth"):
        learngene.build({"layers": 2})


def test_random_is_the_target_architectures_own_init(bert):
    learngene = Learngene.extract(bert, method="random", show_progress=False)
    assert learngene.config.roles == {}
    size = {"layers": 2, "hidden": 8, "heads": 2}
    torch.manual_seed(3)
    built = hf_learngene.AutoModelForMaskedLM.from_learngene(learngene, size, show_progress=False)
    torch.manual_seed(3)
    reference = transformers.AutoModelForMaskedLM.from_config(learngene.target_config(size))
    for name, tensor in reference.state_dict().items():
        assert tensor.shape == built.state_dict()[name].shape
    std = built.bert.encoder.layer[0].intermediate.dense.weight.std().item()
    assert 0.015 < std < 0.025  # BERT's initializer_range 0.02, not left empty
