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


@pytest.fixture
def failing_hub(hub):
    """The local Hub, answering errors or dropping connections as a test sets; reset afterwards."""
    yield hub
    hub.errors.clear()
    hub.drop_commits = False


def test_refused_repo_creation_says_nothing_was_uploaded(failing_hub, source):
    failing_hub.errors["create"] = (401, "Invalid username or password.")
    learngene = Learngene.extract(source, method="front", show_progress=False)
    with pytest.raises(hf_learngene.LearngenePushError,
                       match=r"refused to create or open the repository 'tester/tiny-no-create' \(HTTP 401: Invalid "
                             r"username or password.\); nothing was uploaded. The token was not accepted"):
        learngene.push_to_hub("tester/tiny-no-create")
    assert ("model", "tester/tiny-no-create") not in failing_hub.repos


def test_refused_commit_names_the_answer(failing_hub, source):
    learngene = Learngene.extract(source, method="front", show_progress=False)
    learngene.push_to_hub("tester/tiny-refused")
    before = HfApi().model_info("tester/tiny-refused").sha
    failing_hub.errors["commit"] = (403, "You don't have the rights to push to tester/tiny-refused")
    with pytest.raises(hf_learngene.LearngenePushError,
                       match=r"the Hub refused the commit \(HTTP 403: You don't have the rights to push to "
                             r"tester/tiny-refused\); nothing was committed.*token may not write"):
        learngene.push_to_hub("tester/tiny-refused")
    assert HfApi().model_info("tester/tiny-refused").sha == before


def test_a_server_error_on_the_commit_does_not_claim_nothing_was_committed(failing_hub, source):
    """A gateway's 502 can come after the commit was made: the error says to look at the history."""
    learngene = Learngene.extract(source, method="front", show_progress=False)
    failing_hub.errors["commit"] = (502, "Bad gateway")
    with pytest.raises(hf_learngene.LearngenePushError, match=r"server error \(HTTP 502.*may or may not have been made"):
        learngene.push_to_hub("tester/tiny-gateway")


def test_connection_lost_during_the_commit_does_not_claim_nothing_was_committed(failing_hub, source):
    learngene = Learngene.extract(source, method="front", show_progress=False)
    learngene.push_to_hub("tester/tiny-lost-answer")
    before = HfApi().model_info("tester/tiny-lost-answer").sha
    failing_hub.drop_commits = True
    with pytest.raises(hf_learngene.LearngenePushError) as raised:
        Learngene.extract(source, method="bot", show_progress=False).push_to_hub("tester/tiny-lost-answer")
    message = str(raised.value)
    assert "connection was lost during the commit call" in message and "may or may not have been made" in message
    assert "nothing was committed" not in message
    failing_hub.drop_commits = False
    assert HfApi().model_info("tester/tiny-lost-answer").sha != before  # here the Hub did make the commit


def test_failure_writing_the_upload_says_nothing_was_uploaded(hub, source, monkeypatch):
    learngene = Learngene.extract(source, method="front", show_progress=False)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("hf_learngene.safetensors_file.SafetensorsWriter.append", disk_full)
    with pytest.raises(hf_learngene.LearngenePushError,
                       match=r"writing its files into a temporary folder for the upload failed \(OSError: .*No space "
                             r"left on device\); nothing was uploaded to 'tester/tiny-disk-full'"):
        learngene.push_to_hub("tester/tiny-disk-full")
    assert not hub.repos[("model", "tester/tiny-disk-full")].commits[hub.repos[("model", "tester/tiny-disk-full")]
                                                                      .branches["main"]]  # only the empty first commit


def test_save_pretrained_push_to_hub(hub, source, tmp_path):
    """transformers' save_pretrained(push_to_hub=True): save the folder, then push it (repo named after it)."""
    learngene = Learngene.extract(source, method="front", show_progress=False)
    learngene.save_pretrained(tmp_path / "tiny-saved-and-pushed", push_to_hub=True, commit_message="first")
    assert (tmp_path / "tiny-saved-and-pushed" / "learngene.safetensors").is_file()
    files = set(HfApi().list_repo_files("tester/tiny-saved-and-pushed"))
    assert {"config.json", "learngene.safetensors", "README.md"} <= files
    assert ModelCard.load("tester/tiny-saved-and-pushed").data.library_name == "hf-learngene"
    pulled = Learngene.from_pretrained("tester/tiny-saved-and-pushed", cache_dir=tmp_path / "cache")
    assert pulled.config.checksum == Learngene.from_pretrained(tmp_path / "tiny-saved-and-pushed").config.checksum

    (tmp_path / "local" / "checkpoint-500").mkdir(parents=True)  # a Trainer's output_dir: its other files stay here
    (tmp_path / "local" / "checkpoint-500" / "trainer_state.json").write_text("{}")
    learngene.save_pretrained(tmp_path / "local", push_to_hub=True, repo_id="tester/tiny-named", tags=["extra"])
    assert "extra" in ModelCard.load("tester/tiny-named").data.tags
    assert set(HfApi().list_repo_files("tester/tiny-named")) == files  # the learngene's files, nothing else
    assert (tmp_path / "local" / "checkpoint-500" / "trainer_state.json").is_file()


def test_built_model_replaces_nothing_private(source):
    """A built model's card comes from the public push_built_model, bound as its push_to_hub; no private method
    is replaced, and the model serialises and deep-copies like any transformers model (nothing is unpickled:
    a copy goes through the same reduction a pickle does)."""
    import copy
    import pickle

    model = Learngene.extract(source, method="front", show_progress=False).build(
        SIZE, auto_class=transformers.AutoModelForSequenceClassification, num_labels=2, show_progress=False)
    assert "_upload_modified_files" not in vars(model)
    assert pickle.dumps(model)  # no local closures bound to the model
    duplicate = copy.deepcopy(model)
    ids = torch.randint(1, 90, (2, 5))
    assert torch.equal(logits(duplicate, ids), logits(model, ids))
    assert duplicate.push_to_hub.args[0] is duplicate  # the copy pushes itself, not the original


def test_push_built_model(hub, source, tmp_path):
    from hf_learngene.learngene import push_built_model

    model = Learngene.extract(source, method="front", show_progress=False).build(
        SIZE, auto_class=transformers.AutoModelForSequenceClassification, num_labels=2, show_progress=False)
    assert model.push_to_hub.func is push_built_model
    push_built_model(model, "tester/tiny-built-helper", tags=["mine"])
    card = ModelCard.load("tester/tiny-built-helper")
    assert {"learngene", "learngene-front", "mine"} <= set(card.data.tags)
    assert set(HfApi().list_repo_files("tester/tiny-built-helper")) >= {"config.json", "model.safetensors", "README.md"}
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained("tester/tiny-built-helper",
                                                                               cache_dir=tmp_path / "models")
    ids = torch.randint(1, 90, (2, 5))
    assert torch.allclose(logits(loaded, ids), logits(model, ids), atol=1e-6)
