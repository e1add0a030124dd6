"""Saving writes into an existing folder as transformers does (other files kept, stale shards of
the same weights removed), never over another kind of model, with the modes a plain mkdir gives,
and a new folder appears whole."""

import os
import stat

import pytest
import tokenizers
import torch
import transformers

from hf_learngene import Learngene, LearngeneConfigError
from hf_learngene.saving import write_folder_atomically

from conftest import tiny_config, tiny_model


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    tiny_model(tiny_config("llama", 2, 4, 8, 64, kv_heads=2)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def learngene(llama_dir):
    return Learngene.extract(str(llama_dir), method="bot")


def _names(folder):
    return sorted(path.name for path in folder.iterdir())


def test_saving_into_a_folder_keeps_what_else_is_there(learngene, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-500").mkdir(parents=True)
    (out / "checkpoint-500" / "trainer_state.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    learngene.save_pretrained(out)
    assert _names(out) == ["checkpoint-500", "config.json", "learngene.safetensors", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint-500" / "trainer_state.json").is_file()
    loaded = Learngene.from_pretrained(out)
    for name, tensor in learngene.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)


def test_a_later_save_removes_the_stale_shards_of_an_earlier_one(learngene, tmp_path):
    out = tmp_path / "lg"
    learngene.save_pretrained(out, max_shard_size="4KB")
    shards = [name for name in _names(out) if name.startswith("learngene-")]
    assert len(shards) > 2 and "learngene.safetensors.index.json" in _names(out)
    (out / "README.md").write_text("kept")
    learngene.save_pretrained(out)  # one file now: the shards and their index are stale
    assert _names(out) == ["README.md", "config.json", "learngene.safetensors"]
    learngene.save_pretrained(out, max_shard_size="4KB")  # and back: the single file is stale
    assert "learngene.safetensors" not in _names(out) and len([n for n in _names(out) if n.startswith("learngene-")]) == len(shards)
    Learngene.from_pretrained(out).build()


def test_a_save_over_another_kind_of_model_is_refused(learngene, llama_dir, tmp_path):
    before = {path.name: path.read_bytes() for path in llama_dir.iterdir()}
    with pytest.raises(LearngeneConfigError, match="already holds a 'llama' model.*'learngene'"):
        Learngene.extract(str(llama_dir), method="bot", save_directory=llama_dir)
    assert {path.name: path.read_bytes() for path in llama_dir.iterdir()} == before  # nothing moved, nothing left
    lg_dir = tmp_path / "lg"
    learngene.save_pretrained(lg_dir)
    with pytest.raises(LearngeneConfigError, match="already holds a 'learngene' model.*'llama'"):
        learngene.build_pretrained(lg_dir)
    assert _names(lg_dir) == ["config.json", "learngene.safetensors"]


def test_saved_folders_get_the_mode_mkdir_gives(learngene, tmp_path):
    umask = os.umask(0o022)
    try:
        learngene.save_pretrained(tmp_path / "lg")
        learngene.build_pretrained(tmp_path / "model")
    finally:
        os.umask(umask)
    for folder in (tmp_path / "lg", tmp_path / "model"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_failing_write_leaves_an_existing_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text('{"model_type": "llama"}')

    def write(staging):
        (staging / "config.json").write_text('{"model_type": "llama", "new": 1}')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder_atomically(out, write)
    assert _names(out) == ["config.json"] and "new" not in (out / "config.json").read_text()
    with pytest.raises(LearngeneConfigError, match="is a file, not a folder"):
        write_folder_atomically(out / "config.json", write)


def test_an_earlier_saves_tokenizer_does_not_outlive_it(learngene, tmp_path):
    """A loader takes whatever tokenizer lies beside the config: a save without one removes the old one."""
    out = tmp_path / "lg"
    (tmp_path / "tokenizer_source").mkdir()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer(tokenizers.models.WordLevel(
        {"[UNK]": 0, "a": 1}, unk_token="[UNK]")))
    with_tokenizer = Learngene.from_pretrained(_saved(learngene, tmp_path / "plain"))
    with_tokenizer.processor = tokenizer
    with_tokenizer.save_pretrained(out)
    assert "tokenizer.json" in _names(out) and Learngene.from_pretrained(out).processor is not None
    (out / "notes.txt").write_text("kept")
    learngene.save_pretrained(out)  # no processor
    assert _names(out) == ["config.json", "learngene.safetensors", "notes.txt"]
    assert Learngene.from_pretrained(out).processor is None


def _saved(learngene, folder):
    learngene.save_pretrained(folder)
    return folder
