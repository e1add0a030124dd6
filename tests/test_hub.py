"""The Hub workflow against the local test server: push a learngene, pull it into an empty cache,
build a model from the repo id, push that model, load it back with plain transformers, and the
same offline afterwards; plus the errors a user meets on the way."""

import huggingface_hub
import pytest
import torch
import transformers
from huggingface_hub import HfApi, ModelCard

import hf_learngene
from hf_learngene import Learngene, LearngeneLoadError
from hf_learngene.learngene import canonical_state

from conftest import tiny_config, tiny_model

SIZE = {"layers": 1, "hidden": 8, "heads": 2}


@pytest.fixture(scope="module")
def source():
    return tiny_model(tiny_config("bert", layers=2, heads=4, head_dim=4, intermediate=32))


def logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_round_trip(hub, source, tmp_path, monkeypatch):
    learngene = Learngene.extract(source, method="front", show_progress=False)
    learngene.config.source_name_or_path = "sentence-transformers/all-MiniLM-L6-v2"  # as when extracted from the Hub
    first = learngene.push_to_hub("tester/tiny-front")
    assert ("model", "tester/tiny-front") in hub.repos

    pulled = Learngene.from_pretrained("tester/tiny-front", cache_dir=tmp_path / "cache")
    for name, tensor in learngene.coefficients.items():
        assert torch.equal(pulled.coefficients[name], tensor)
    card = ModelCard.load("tester/tiny-front")
    assert card.data.library_name == "hf-learngene"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"learngene", "learngene-front", "bert"} <= set(card.data.tags)
    assert card.data.learngene["method"] == "front" and card.data.learngene["stored_bytes"] > 0

    model = hf_learngene.AutoModelForSequenceClassification.from_learngene(
        "tester/tiny-front", SIZE, num_labels=2, cache_dir=tmp_path / "cache", show_progress=False)
    assert model.config.learngene["learngene"] == "tester/tiny-front"
    model.push_to_hub("tester/tiny-built")
    built_card = ModelCard.load("tester/tiny-built")
    assert built_card.data.base_model == "tester/tiny-front"
    assert "learngene-front" in built_card.data.tags and "tester/tiny-front" in built_card.text

    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(
        "tester/tiny-built", cache_dir=tmp_path / "models")
    ids = torch.randint(1, 90, (2, 5))
    assert torch.allclose(logits(loaded, ids), logits(model, ids), atol=1e-6)

    # a second push makes a new revision; the first stays reachable by its commit id
    Learngene.extract(source, method="bot", show_progress=False).push_to_hub("tester/tiny-front")
    assert Learngene.from_pretrained("tester/tiny-front", cache_dir=tmp_path / "cache").config.method == "bot"
    old = Learngene.from_pretrained("tester/tiny-front", revision=first.oid, cache_dir=tmp_path / "cache")
    assert old.config.method == "front"

    # offline: everything above comes from the cache
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    served = len(hub.requests)
    again = hf_learngene.AutoModelForSequenceClassification.from_learngene(
        "tester/tiny-front", SIZE, num_labels=2, cache_dir=tmp_path / "cache", show_progress=False)
    assert again.config.learngene["method"] == "bot"
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(
        "tester/tiny-built", cache_dir=tmp_path / "models")
    assert torch.allclose(logits(reloaded, ids), logits(model, ids), atol=1e-6)
    assert len(hub.requests) == served, "offline mode must not reach the server"
    with pytest.raises(LearngeneLoadError, match="not in the Hub cache, and the Hub cannot be reached"):
        Learngene.from_pretrained("tester/tiny-front", cache_dir=tmp_path / "empty-cache")


def test_missing_repo_and_revision(hub, source, tmp_path):
    with pytest.raises(LearngeneLoadError, match="'tester/no-such-repo' is neither a local folder nor a Hub repository"):
        Learngene.from_pretrained("tester/no-such-repo", cache_dir=tmp_path)
    Learngene.extract(source, method="bot", show_progress=False).push_to_hub("tester/tiny-revisions")
    with pytest.raises(LearngeneLoadError, match="revision 'no-such-branch' does not exist"):
        Learngene.from_pretrained("tester/tiny-revisions", revision="no-such-branch", cache_dir=tmp_path)
    with pytest.raises(LearngeneLoadError, match="revision 'v9' does not exist"):
        hf_learngene.AutoModel.from_learngene("tester/tiny-revisions", SIZE, revision="v9", cache_dir=tmp_path)


def test_server_going_away_mid_push(hub, source, tmp_path):
    learngene = Learngene.extract(source, method="front", show_progress=False)
    learngene.push_to_hub("tester/tiny-interrupted")
    before = HfApi().model_info("tester/tiny-interrupted").sha
    learngene.save_pretrained(tmp_path / "local")

    hub.fail_uploads = True
    changed = Learngene.extract(source, method="front", keep=0.5, show_progress=False)
    with pytest.raises(hf_learngene.LearngenePushError, match="tester/tiny-interrupted.*nothing was committed"):
        changed.push_to_hub("tester/tiny-interrupted")
    hub.fail_uploads = False

    assert HfApi().model_info("tester/tiny-interrupted").sha == before  # the repo kept its last good commit
    assert Learngene.from_pretrained(tmp_path / "local").config.method_options == {"keep": 1.0}
    pulled = Learngene.from_pretrained("tester/tiny-interrupted", cache_dir=tmp_path / "cache")
    assert pulled.config.checksum == learngene.config.checksum
    assert canonical_state(pulled.build(show_progress=False)).keys()
