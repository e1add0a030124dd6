"""Extracting from a model whose weights are offloaded (accelerate's cpu_offload, a device_map with
"disk") reads the real values; a model without values (init_empty_weights) gets a clear error."""

import accelerate
import pytest
import torch

from hf_learngene import Learngene, LearngeneLoadError
from hf_learngene.learngene import canonical_state

from conftest import SOURCE_CLASS, tiny_config, tiny_model


def same_learngene(a: Learngene, b: Learngene) -> bool:
    return a.coefficients.keys() == b.coefficients.keys() and all(
        torch.equal(a.coefficients[key], b.coefficients[key]) for key in a.coefficients
    )


@pytest.mark.parametrize("family", ["bert", "gpt2"])  # tied LM decoders, which offloading unties
def test_cpu_offloaded_model(family):
    reference = Learngene.extract(tiny_model(tiny_config(family, 2, 2, 4, 16)), show_progress=False)
    model = tiny_model(tiny_config(family, 2, 2, 4, 16))
    accelerate.cpu_offload(model)
    assert all(tensor.is_meta for tensor in model.state_dict().values())
    assert same_learngene(Learngene.extract(model, show_progress=False), reference)
    assert all(tensor.is_meta for tensor in model.state_dict().values())  # the weights went back to their offload


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_disk_offloaded_model(family, tmp_path):
    """``from_pretrained(device_map=..., offload_folder=...)``, as a model too large for memory is loaded."""
    source = tiny_model(tiny_config(family, 2, 2, 4, 16, tied=False) if family == "llama"
                        else tiny_config(family, 2, 2, 4, 16))
    reference = Learngene.extract(source, show_progress=False)
    source.save_pretrained(tmp_path / "model")
    prefix = source.base_model_prefix
    device_map = {f"{prefix}.{name}": "disk" if name in ("encoder", "layers") else "cpu"
                  for name, _ in getattr(source, prefix).named_children()}
    device_map.update({name: "cpu" for name, _ in source.named_children() if name != prefix})
    offloaded = type(source).from_pretrained(tmp_path / "model", device_map=device_map,
                                             offload_folder=tmp_path / "offload")
    assert any(tensor.is_meta for tensor in offloaded.state_dict().values())
    assert same_learngene(Learngene.extract(offloaded, show_progress=False), reference)


def test_model_without_weights_gets_a_clear_error():
    config = tiny_config("bert", 2, 2, 4, 16)
    config.architectures = []
    with accelerate.init_empty_weights():
        model = SOURCE_CLASS["bert"].from_config(config)
    with pytest.raises(LearngeneLoadError, match="weights are not materialised: .* on the meta device with no "
                                                 "offloaded copy.*Pass the model's folder or Hub id instead"):
        Learngene.extract(model, show_progress=False)


def test_tied_copies_on_the_meta_device_are_dropped_but_distinct_weights_are_not():
    """Meta tensors all have address 0: tied copies are told apart by the model's tied-weights map instead."""
    model = tiny_model(tiny_config("bert", 2, 2, 4, 16))
    names = set(canonical_state(model))
    with accelerate.init_empty_weights():
        empty = type(model)(model.config)
    assert set(canonical_state(empty)) == names
    assert "cls.predictions.decoder.weight" not in names  # the copy of the word embeddings
