"""Bad input gets a clear, specific error — and nothing half-written on disk."""

import json

import pytest
import transformers

import hf_learngene
from hf_learngene import (
    FamilyMismatchError,
    Learngene,
    LearngeneConfigError,
    LearngeneLoadError,
    UnsupportedArchitectureError,
)

from conftest import tiny_config, tiny_model


@pytest.fixture(scope="module")
def bert_learngene():
    return Learngene.extract(tiny_model(tiny_config("bert", 2, 2, 4, 16)), method="front", show_progress=False)


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    config = transformers.DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    model = transformers.DistilBertModel(config)
    with pytest.raises(UnsupportedArchitectureError, match="'distilbert'.*supported model types: bert, deit, gpt2, llama"):
        Learngene.extract(model)
    model.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="distilbert"):
        Learngene.extract(tmp_path)


def test_hidden_not_divisible_by_heads(bert_learngene):
    with pytest.raises(LearngeneConfigError, match="hidden size 250 is not divisible by the head count 4"):
        bert_learngene.build({"hidden": 250, "heads": 4})


@pytest.mark.parametrize("field,value", [("layers", 0), ("hidden", -8), ("heads", 1.5)])
def test_sizes_must_be_positive_integers(bert_learngene, field, value):
    with pytest.raises(LearngeneConfigError, match="must be a positive integer"):
        bert_learngene.build({field: value})


def test_family_mismatch(bert_learngene):
    with pytest.raises(FamilyMismatchError, match="bert family.*cannot build a 'gpt2' model"):
        bert_learngene.build(transformers.GPT2Config())
    with pytest.raises(FamilyMismatchError, match="AutoModelForImageClassification has no model class for the 'bert'"):
        hf_learngene.AutoModelForImageClassification.from_learngene(bert_learngene, show_progress=False)
    with pytest.raises(FamilyMismatchError, match="GPT2Model takes a GPT2Config"):
        bert_learngene.build(None, auto_class=transformers.GPT2Model)


def test_unknown_preset_lists_the_valid_ones(bert_learngene):
    with pytest.raises(LearngeneConfigError, match="unknown size preset 'huge'.*tiny, mini, small, medium, base, large"):
        hf_learngene.AutoModel.from_learngene(bert_learngene, "huge")


def test_vocabulary_size_cannot_change(bert_learngene):
    with pytest.raises(LearngeneConfigError, match="cannot change vocabulary size from 97 to 30522"):
        bert_learngene.build({"vocab_size": 30522})
    with pytest.raises(LearngeneConfigError, match="cannot change max_position_embeddings"):
        bert_learngene.build({"max_position_embeddings": 512})


def test_bad_rescaling_policy():
    with pytest.raises(LearngeneConfigError, match="unknown rescaling policy 'std'"):
        Learngene.extract(tiny_model(tiny_config("bert", 1, 2, 4, 8)), rescaling="std")


@pytest.fixture
def saved(bert_learngene, tmp_path):
    bert_learngene.save_pretrained(tmp_path / "lg")
    return tmp_path / "lg"


def test_truncated_file(saved):
    weights = saved / "learngene.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(LearngeneLoadError, match="truncated or corrupt"):
        Learngene.from_pretrained(saved)


def test_truncated_file_without_checksum(saved):
    config = json.loads((saved / "config.json").read_text())
    config["checksum"] = None
    (saved / "config.json").write_text(json.dumps(config))
    weights = saved / "learngene.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(LearngeneLoadError, match="cannot be read as safetensors.*truncated or corrupt"):
        Learngene.from_pretrained(saved)


def test_corrupted_byte(saved):
    weights = saved / "learngene.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(LearngeneLoadError, match="does not match the checksum"):
        Learngene.from_pretrained(saved)


def test_corrupt_config(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(LearngeneLoadError, match="not valid JSON"):
        Learngene.from_pretrained(saved)


def test_missing_files_and_foreign_folders(saved, tmp_path):
    (saved / "learngene.safetensors").unlink()
    with pytest.raises(LearngeneLoadError, match="learngene.safetensors is missing"):
        Learngene.from_pretrained(saved)
    model_dir = tmp_path / "bert"
    tiny_model(tiny_config("bert", 1, 2, 4, 8)).save_pretrained(model_dir)
    (model_dir / "learngene.safetensors").write_bytes(b"")
    with pytest.raises(LearngeneLoadError, match="holds a 'bert' model, not a learngene"):
        Learngene.from_pretrained(model_dir)
    with pytest.raises(LearngeneLoadError, match="neither a local folder nor a valid Hub repository id"):
        Learngene.from_pretrained(str(tmp_path / "no" / "such" / "folder"))


def test_interrupted_save_leaves_no_half_written_learngene(bert_learngene, saved, monkeypatch):
    before = (saved / "learngene.safetensors").read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hf_learngene.learngene.save_file", explode)
    with pytest.raises(KeyboardInterrupt):
        bert_learngene.save_pretrained(saved)
    with pytest.raises(KeyboardInterrupt):
        bert_learngene.save_pretrained(saved.parent / "new")
    assert (saved / "learngene.safetensors").read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["lg"]  # no temporary folder, no half-written "new"


def test_source_that_cannot_be_loaded(tmp_path):
    with pytest.raises(hf_learngene.LearngeneLoadError, match="cannot load the source model"):
        Learngene.extract(str(tmp_path / "missing-model"))
