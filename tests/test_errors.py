"""Bad input gets a clear, specific error — and nothing half-written on disk."""

import json
from pathlib import Path

import pytest
import torch
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
    config = transformers.OPTConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    ffn_dim=32, word_embed_proj_dim=16, max_position_embeddings=32)
    model = transformers.OPTModel(config)
    with pytest.raises(UnsupportedArchitectureError, match="'opt'.*supported model types: bert, deit, distilbert"):
        Learngene.extract(model)
    model.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="'opt'"):
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
    with pytest.raises(LearngeneLoadError, match="neither learngene.safetensors nor learngene.safetensors.index.json"):
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

    monkeypatch.setattr("hf_learngene.safetensors_file.SafetensorsWriter.append", explode)
    with pytest.raises(KeyboardInterrupt):
        bert_learngene.save_pretrained(saved)
    with pytest.raises(KeyboardInterrupt):
        bert_learngene.save_pretrained(saved.parent / "new")
    assert (saved / "learngene.safetensors").read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["lg"]  # no temporary folder, no half-written "new"


def test_source_that_cannot_be_loaded(tmp_path):
    with pytest.raises(hf_learngene.LearngeneLoadError, match="cannot load the source model"):
        Learngene.extract(str(tmp_path / "missing-model"))


# ---------------------------------------------------------------------------- save_pretrained's arguments


def test_save_pretrained_refuses_arguments_it_cannot_honour(bert_learngene, tmp_path):
    with pytest.raises(LearngeneConfigError, match="unexpected argument\\(s\\) safe_serialization, variant"):
        bert_learngene.save_pretrained(tmp_path / "lg", variant="fp16", safe_serialization=True)
    with pytest.raises(LearngeneConfigError, match="commit_message only apply when pushing: pass push_to_hub=True"):
        bert_learngene.save_pretrained(tmp_path / "lg", commit_message="hello")
    assert not (tmp_path / "lg").exists()


def test_save_pretrained_max_shard_size(bert_learngene, tmp_path):
    """A limit shards the learngene with an index; a value that is not a size is refused before anything is written."""
    for bad, message in (("lots", "max_shard_size='lots' is not a size"), (0, "must be more than 0 bytes")):
        with pytest.raises(LearngeneConfigError, match=message):
            bert_learngene.save_pretrained(tmp_path / "small", max_shard_size=bad)
    assert not (tmp_path / "small").exists()
    bert_learngene.save_pretrained(tmp_path / "small", max_shard_size="2KB")
    assert len(list((tmp_path / "small").glob("learngene-*-of-*.safetensors"))) > 1
    assert (tmp_path / "small" / "learngene.safetensors.index.json").is_file()
    bert_learngene.save_pretrained(tmp_path / "big", max_shard_size="5GB")
    assert Learngene.from_pretrained(tmp_path / "big").config.checksum == bert_learngene.config.checksum
    assert (tmp_path / "big" / "learngene.safetensors").is_file()


def test_save_pretrained_on_other_processes_writes_nothing(bert_learngene, tmp_path):
    bert_learngene.save_pretrained(tmp_path / "lg", is_main_process=False)
    assert not (tmp_path / "lg").exists()


def test_save_pretrained_takes_a_state_dict(bert_learngene, tmp_path):
    """As Trainer passes it: the given tensors are saved, not the learngene's own."""
    state = {name: torch.full_like(tensor, 0.25) for name, tensor in bert_learngene.state_dict().items()}
    bert_learngene.save_pretrained(tmp_path / "lg", state_dict=state)
    saved = Learngene.from_pretrained(tmp_path / "lg")
    assert all(torch.all(tensor == 0.25) for tensor in saved.coefficients.values())
    assert not all(torch.all(tensor == 0.25) for tensor in bert_learngene.coefficients.values())
    with pytest.raises(LearngeneConfigError, match="state_dict passed to save_pretrained has no 'coefficients."):
        bert_learngene.save_pretrained(tmp_path / "other", state_dict={})


# ---------------------------------------------------------------------------- is it a diffusers model?


def test_diffusers_check_reads_only_what_means_not_diffusers(tmp_path, monkeypatch):
    """A missing or unparsable config.json means "not a diffusers model" (transformers' loader says the rest);
    a config.json that cannot be read is an error of its own, not a silent fallback."""
    from hf_learngene.learngene import _diffusers_class_name

    assert _diffusers_class_name(tmp_path, None) is None  # no config.json
    (tmp_path / "config.json").write_text("{not json")
    assert _diffusers_class_name(tmp_path, None) is None
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    assert _diffusers_class_name(tmp_path, None) == "UNet2DModel"

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_text", unreadable)
    with pytest.raises(LearngeneLoadError, match="cannot read .*config.json: .*Permission denied"):
        _diffusers_class_name(tmp_path, None)


def test_diffusers_check_on_the_hub(hub):
    """A Hub that refuses the token is an error saying so; a missing repo, file or revision means "not diffusers"."""
    from hf_learngene.learngene import _diffusers_class_name

    tiny_model(tiny_config("bert", 1, 2, 4, 8)).push_to_hub("tester/tiny-bert-source")
    hub.errors["resolve"] = (401, "Invalid credentials in Authorization header")
    try:
        with pytest.raises(LearngeneLoadError, match="cannot load the source model 'tester/tiny-bert-source': the Hub "
                                                     "answered HTTP 401: Invalid credentials in Authorization header"):
            Learngene.extract("tester/tiny-bert-source", show_progress=False)
    finally:
        hub.errors.clear()
    assert _diffusers_class_name("tester/no-such-model", None) is None  # transformers' loader says it is missing
    assert _diffusers_class_name("tester/tiny-bert-source", "no-such-branch") is None
    assert _diffusers_class_name("tester/tiny-bert-source", None) is None  # a transformers model


def test_from_pretrained_honours_or_refuses_every_argument(bert_learngene, tmp_path):
    bert_learngene.save_pretrained(tmp_path / "repo" / "lg")
    with pytest.raises(LearngeneConfigError, match="unexpected argument.*bogus, device_map"):
        Learngene.from_pretrained(tmp_path / "repo" / "lg", device_map="meta", bogus=1)
    loaded = Learngene.from_pretrained(tmp_path / "repo", subfolder="lg", dtype=torch.bfloat16)
    assert {tensor.dtype for tensor in loaded.parameters()} == {torch.bfloat16}
    assert Learngene.from_pretrained(tmp_path / "repo" / "lg", torch_dtype="auto").config.checksum == loaded.config.checksum
    with pytest.raises(LearngeneConfigError, match="dtype=torch.int8 is not supported"):
        Learngene.from_pretrained(tmp_path / "repo" / "lg", dtype=torch.int8)
    with pytest.raises(LearngeneConfigError, match="low_cpu_mem_usage=True loads none"):
        Learngene.from_pretrained(tmp_path / "repo" / "lg", dtype="bfloat16", low_cpu_mem_usage=True)
    with pytest.raises(LearngeneLoadError, match="config.json is missing"):
        Learngene.from_pretrained(tmp_path / "repo", subfolder="nope")


def test_float16_storage_refuses_values_it_cannot_hold(tmp_path):
    model = tiny_model(tiny_config("bert", 1, 2, 4, 8))
    with torch.no_grad():
        model.bert.encoder.layer[0].output.LayerNorm.weight[0] = 1e6
    learngene = Learngene.extract(model, method="front", rescaling="none", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="beyond float16's range.*bfloat16 or float32"):
        learngene.save_pretrained(tmp_path / "lg", storage_dtype="float16")
    assert not (tmp_path / "lg").exists()
    learngene.save_pretrained(tmp_path / "lg", storage_dtype="bfloat16")
