"""Every family, every method: exact at the source size, and every size builds and trains."""

import logging

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hf_learngene
from hf_learngene import Learngene
from hf_learngene.learngene import canonical_state

from conftest import METHODS, forward_backward, tiny_config, tiny_model

FAMILIES = ("bert", "gpt2", "llama", "vit", "deit")
TARGET_CLASS = {
    "bert": hf_learngene.AutoModelForSequenceClassification,
    "gpt2": hf_learngene.AutoModelForCausalLM,
    "llama": hf_learngene.AutoModelForCausalLM,
    "vit": hf_learngene.AutoModelForImageClassification,
    "deit": hf_learngene.AutoModelForImageClassification,
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_source_size_reproduces_every_tensor(family, method):
    config = tiny_config(family, layers=3, heads=4, head_dim=6, intermediate=40, kv_heads=2, tied=False)
    source = tiny_model(config)
    learngene = Learngene.extract(source, method=method, show_progress=False)
    rebuilt = learngene.build(None, auto_class=type(source), show_progress=False)
    assert type(rebuilt) is type(source)
    expected, got = canonical_state(source), canonical_state(rebuilt)
    compared = 0
    for name, tensor in expected.items():
        if learngene.architecture.is_fresh(name):
            continue
        assert (got[name] - tensor).abs().max().item() <= 1e-5, name
        compared += 1
    assert compared >= len(learngene.config.roles) > 10


size_strategy = st.fixed_dictionaries(
    {
        "layers": st.integers(1, 4),
        "heads": st.integers(1, 4),
        "head_dim": st.sampled_from([2, 4, 6, 8]),
        "intermediate": st.integers(4, 48),
    }
)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=size_strategy, target=size_strategy, group=st.sampled_from([1, 2]), tied=st.booleans())
def test_any_size_builds_loads_strictly_and_trains(family, method, source, target, group, tied, tmp_path_factory):
    kv = lambda sizes: sizes["heads"] // group if sizes["heads"] % group == 0 else sizes["heads"]
    source_model = tiny_model(tiny_config(family, kv_heads=kv(source), tied=tied, **source))
    learngene = Learngene.extract(source_model, method=method, show_progress=False)
    request = {**target, "hidden": target["heads"] * target["head_dim"]}
    del request["head_dim"]
    if family == "llama":
        request["kv_heads"] = kv(target)
    model = TARGET_CLASS[family].from_learngene(learngene, request, show_progress=False)
    sizes = learngene.architecture.axis_sizes(model.config)
    assert (sizes["layers"], sizes["hidden"], sizes["heads"], sizes["intermediate"]) == (
        target["layers"], target["heads"] * target["head_dim"], target["heads"], target["intermediate"]
    )
    # strict loading into the plain transformers class: no key missing, none unexpected
    fresh = type(model)(model.config)
    fresh.load_state_dict(model.state_dict(), strict=True)
    for name, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all(), name
    forward_backward(model)


def test_image_processor_travels_with_the_learngene(tmp_path):
    source = tiny_model(tiny_config("vit", layers=2, heads=2, head_dim=4, intermediate=16))
    processor = transformers.ViTImageProcessorPil(size={"height": 16, "width": 16})
    Learngene.extract(source, method="bot", processor=processor, show_progress=False).save_pretrained(tmp_path)
    loaded = Learngene.from_pretrained(tmp_path)
    assert isinstance(loaded.processor, transformers.ViTImageProcessorPil)
    model = hf_learngene.AutoModelForImageClassification.from_learngene(
        loaded, {"layers": 3, "hidden": 12, "heads": 3}, num_labels=5, show_progress=False
    )
    pixels = loaded.processor(images=[torch.rand(3, 20, 20)], return_tensors="pt", do_rescale=False)["pixel_values"]
    assert model(pixel_values=pixels).logits.shape == (1, 5)


def test_a_grouping_that_cannot_be_kept_is_said_not_silent(caplog):
    """4 heads sharing 2 key/value heads (2 per kv head) → 3 heads: the grouping does not divide 3."""
    source = tiny_model(tiny_config("llama", layers=2, heads=4, head_dim=4, intermediate=16, kv_heads=2))
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        model = learngene.build({"hidden": 12, "heads": 3}, show_progress=False)
    assert model.config.num_key_value_heads == 3
    [message] = [r.getMessage() for r in caplog.records if "kv_heads" in r.getMessage()]
    assert "groups 2 query heads per key/value head" in message and "building with kv_heads=3" in message
    assert "pass kv_heads explicitly" in message and "num_key_value_heads=k, with k one of 1, 3" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        explicit = learngene.build({"hidden": 12, "heads": 3, "kv_heads": 1}, show_progress=False)
        assert explicit.config.num_key_value_heads == 1
        assert learngene.target_config({"hidden": 12, "heads": 3}, num_key_value_heads=3).num_key_value_heads == 3
        assert learngene.target_config({"hidden": 32, "heads": 8}).num_key_value_heads == 4  # the grouping is kept
    assert not [r for r in caplog.records if "kv_heads" in r.getMessage()]
