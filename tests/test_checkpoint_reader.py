"""CheckpointReader reads a saved model's safetensors tensor by tensor under the names, values and
dtypes ``canonical_state(Model.from_pretrained(folder))`` gives, without building the model; a
checkpoint it cannot read that way raises the error that makes the caller load the model instead."""

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from hf_learngene.architectures import architecture_for, config_as_dict, model_type_of
from hf_learngene.checkpoint_reader import (
    CheckpointReader,
    LazyReadUnsupported,
    NoSafetensorsError,
    checkpoint_files_patterns,
)
from hf_learngene.errors import LearngeneLoadError
from hf_learngene.learngene import canonical_state, group_by_role

from conftest import tiny_config, tiny_model


def loaded(folder: Path) -> torch.nn.Module:
    """The model as ``_load_source`` loads it: the class its config names (diffusers: its ``_class_name``)."""
    fields = json.loads((folder / "config.json").read_text())
    if "_class_name" in fields:
        import diffusers

        return getattr(diffusers, fields["_class_name"]).from_pretrained(folder)
    return getattr(transformers, fields["architectures"][0]).from_pretrained(folder)


def assert_reads_like_from_pretrained(folder: Path) -> CheckpointReader:
    model = loaded(folder)
    expected = canonical_state(model)
    reader = CheckpointReader(folder)
    assert reader.canonical_names() == {name: tuple(tensor.shape) for name, tensor in expected.items()}
    assert list(reader.canonical_names()) == list(expected)  # state_dict order, so roles group alike
    lazy = reader.lazy_state()
    assert list(lazy) == list(expected)
    for name, tensor in expected.items():
        assert (lazy[name].shape, lazy[name].dtype, lazy[name].is_meta) == (tensor.shape, tensor.dtype, False)
        assert lazy[name].numel() == tensor.numel()
        value = lazy[name].load()
        assert value.dtype == tensor.dtype and torch.equal(value, tensor), name
    assert reader.stored_config_dict() == config_as_dict(model)
    assert reader.model_type() == model_type_of(model)
    arch = architecture_for(reader.model_type())
    assert arch.axis_sizes(reader.config) == arch.axis_sizes(model.config)
    by_role = lambda groups: {role: {layer: name for layer, (name, _) in members.items()}
                              for role, (_, members) in groups.items()}
    assert by_role(group_by_role(arch, lazy, "source model", reader.config)) == by_role(
        group_by_role(arch, expected, "source model", model.config))
    return reader


def shards(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.safetensors"))


@pytest.mark.parametrize("family, tied", [("bert", True), ("gpt2", True), ("llama", True), ("llama", False),
                                          ("vit", True)])
def test_sharded_transformers_checkpoints_read_like_from_pretrained(family, tied, tmp_path):
    """BERT with its MLM head, GPT-2 and Llama LM heads (tied and untied), ViT (whose checkpoint names
    transformers 5 renames on load: encoder.layer.N.attention.attention.query → layers.N.attention.q_proj)."""
    tiny_model(tiny_config(family, 2, 2, 4, 16, tied=tied)).save_pretrained(tmp_path, max_shard_size="2KB")
    assert len(shards(tmp_path)) > 2
    reader = assert_reads_like_from_pretrained(tmp_path)
    names = reader.canonical_names()
    assert not any(name.startswith(("bert.", "transformer.", "model.", "vit.")) for name in names)
    head = {"bert": "cls.predictions.decoder.weight", "gpt2": "lm_head.weight", "llama": "lm_head.weight"}.get(family)
    if head:  # a tied head is a copy, left out; an untied one is a tensor of its own
        assert (head in names) == (not tied)


def test_a_checkpoint_saved_by_transformers_4(minilm_dir):
    """all-MiniLM-L6-v2 as published: saved by transformers 4.8, no dtype in its config, a stored
    ``position_ids`` buffer that the loader now ignores."""
    assert_reads_like_from_pretrained(minilm_dir)


def test_bf16_checkpoint_without_a_dtype_in_its_config(tmp_path):
    """from_pretrained then takes the dtype of the stored tensors, and writes it into the config."""
    tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=False)).to(torch.bfloat16).save_pretrained(tmp_path)
    fields = json.loads((tmp_path / "config.json").read_text())
    fields.pop("dtype", None), fields.pop("torch_dtype", None)
    (tmp_path / "config.json").write_text(json.dumps(fields))
    reader = assert_reads_like_from_pretrained(tmp_path)
    assert reader.config.dtype == torch.bfloat16
    assert reader.get("norm.weight", torch.float32).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # diffusers loads bf16 weights as fp32
def test_diffusers_dit_sharded(dtype, tmp_path):
    import diffusers

    torch.manual_seed(0)
    diffusers.DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=4, out_channels=8, num_layers=2, sample_size=8,
        patch_size=2, num_embeds_ada_norm=10, norm_num_groups=1,
    ).to(dtype).save_pretrained(tmp_path, max_shard_size="3KB")
    assert len(shards(tmp_path)) > 2
    reader = assert_reads_like_from_pretrained(tmp_path)
    assert reader.model_type() == "DiTTransformer2DModel"
    assert reader.stored_config_dict()["_class_name"] == "DiTTransformer2DModel"


def tiny_unet():
    import diffusers

    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4, attention_head_dim=4,
    )


def test_diffusers_unet_single_file(tmp_path):
    tiny_unet().save_pretrained(tmp_path)
    assert shards(tmp_path) == ["diffusion_pytorch_model.safetensors"]
    assert_reads_like_from_pretrained(tmp_path)


def test_diffusers_deprecated_attention_names(tmp_path):
    """Old UNet checkpoints name attention weights query/key/value/proj_attn; diffusers renames them
    when it loads a single file."""
    tiny_unet().save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    old = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    tensors = {}
    for key, value in load_file(path).items():
        for new_name, old_name in old.items():
            key = key.replace(new_name, old_name) if "attentions" in key else key
        tensors[key] = value
    save_file(tensors, path, metadata={"format": "pt"})
    assert "mid_block.attentions.0.query.weight" in tensors
    assert "mid_block.attentions.0.to_q.weight" in assert_reads_like_from_pretrained(tmp_path).canonical_names()


def test_opening_reads_headers_only(tmp_path, monkeypatch):
    tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=False)).save_pretrained(tmp_path, max_shard_size="2KB")
    reads = []
    real_read = CheckpointReader._read
    monkeypatch.setattr(CheckpointReader, "_read", lambda self, key: reads.append(key) or real_read(self, key))
    reader = CheckpointReader(tmp_path)
    assert reader.canonical_names() and reader.lazy_state() and not reads
    reader.get("layers.1.mlp.up_proj.weight")
    assert reads == ["model.layers.1.mlp.up_proj.weight"]
    reader.close()


# ---------------------------------------------------------------------------- checkpoints saved otherwise


def rewrite(folder: Path, rename=lambda key: key, extra=None) -> None:
    """Rewrite a single-file checkpoint's tensors under other names (``rename`` -> None drops one)."""
    path = folder / "model.safetensors"
    tensors = {rename(key): value for key, value in load_file(path).items() if rename(key)}
    save_file({**tensors, **(extra or {})}, path, metadata={"format": "pt"})


def test_legacy_layernorm_gamma_and_beta(tmp_path):
    tiny_model(tiny_config("bert", 2, 2, 4, 16)).save_pretrained(tmp_path)
    rewrite(tmp_path, lambda key: key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                                           "LayerNorm.beta"))
    assert "bert.embeddings.LayerNorm.gamma" in load_file(tmp_path / "model.safetensors")
    reader = assert_reads_like_from_pretrained(tmp_path)
    assert "embeddings.LayerNorm.weight" in reader.canonical_names()


@pytest.mark.parametrize("family", ["llama", "bert"])
def test_checkpoint_saved_without_the_base_model_prefix(family, tmp_path):
    """A head model's checkpoint whose base-model tensors lack the prefix (saved from the bare model)."""
    model = tiny_model(tiny_config(family, 2, 2, 4, 16, tied=False) if family == "llama"
                       else tiny_config(family, 2, 2, 4, 16))
    model.save_pretrained(tmp_path)
    prefix = model.base_model_prefix + "."
    rewrite(tmp_path, lambda key: key.removeprefix(prefix))
    assert not any(key.startswith(prefix) for key in load_file(tmp_path / "model.safetensors"))
    assert_reads_like_from_pretrained(tmp_path)


def test_tied_copy_stored_in_the_file_is_dropped(tmp_path):
    model = tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=True))
    model.save_pretrained(tmp_path)
    rewrite(tmp_path, extra={"lm_head.weight": model.lm_head.weight.detach().clone()})
    assert "lm_head.weight" not in assert_reads_like_from_pretrained(tmp_path).canonical_names()


def test_tied_weights_stored_only_as_the_head(tmp_path):
    """The loader then ties the other way: the word embeddings take the stored head's values."""
    model = tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=True))
    model.save_pretrained(tmp_path)
    head = model.lm_head.weight.detach().clone() + 1
    rewrite(tmp_path, lambda key: None if key == "model.embed_tokens.weight" else key, {"lm_head.weight": head})
    reader = assert_reads_like_from_pretrained(tmp_path)
    assert torch.equal(reader.get("embed_tokens.weight"), head)


def test_tied_copy_stored_with_other_values_stays_its_own_tensor(tmp_path):
    """The loader leaves such a pair untied (and warns), so both are weights of the loaded model."""
    model = tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=True))
    model.save_pretrained(tmp_path)
    rewrite(tmp_path, extra={"lm_head.weight": model.lm_head.weight.detach().clone() + 1})
    assert "lm_head.weight" in assert_reads_like_from_pretrained(tmp_path).canonical_names()


# ---------------------------------------------------------------------------- what it refuses


def test_a_weight_it_cannot_find_is_an_error_not_a_fallback(tmp_path):
    """Loading the model instead would fill the weight with random values (tests/test_reader_refusals.py)."""
    tiny_model(tiny_config("llama", 2, 2, 4, 16)).save_pretrained(tmp_path)
    rewrite(tmp_path, lambda key: key.replace("layers.1.mlp.up_proj", "layers.1.mlp.w3"))
    with pytest.raises(LearngeneLoadError, match="no tensor for 1 of the model's weights .*layers.1.mlp.up_proj") as \
            raised:
        CheckpointReader(tmp_path)
    assert not isinstance(raised.value, LazyReadUnsupported)


def test_a_folder_without_safetensors_asks_for_the_model_to_be_loaded(tmp_path):
    model = tiny_model(tiny_config("bert", 2, 2, 4, 16))
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(NoSafetensorsError, match=r"no model.safetensors .*\(it has pytorch_model.bin\)"):
        CheckpointReader(tmp_path)
    assert issubclass(NoSafetensorsError, LazyReadUnsupported)


def test_a_missing_shard_is_an_error_naming_it(tmp_path):
    tiny_model(tiny_config("gpt2", 2, 2, 4, 16)).save_pretrained(tmp_path, max_shard_size="2KB")
    shard = shards(tmp_path)[1]
    (tmp_path / shard).unlink()
    with pytest.raises(LearngeneLoadError, match=f"the shard {shard} named in model.safetensors.index.json is "
                                                 "missing") as raised:
        CheckpointReader(tmp_path)
    assert not isinstance(raised.value, LazyReadUnsupported)  # no loader could read it: not a fallback


def test_a_truncated_file_is_an_error_naming_it(tmp_path):
    tiny_model(tiny_config("gpt2", 2, 2, 4, 16)).save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(LearngeneLoadError, match="model.safetensors cannot be read as safetensors"):
        CheckpointReader(tmp_path)


def test_download_patterns_take_the_weights_and_tokenizer_but_not_other_formats():
    import fnmatch

    wanted = ["config.json", "model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
              "tokenizer.json", "vocab.txt", "tokenizer.model", "diffusion_pytorch_model.safetensors"]
    unwanted = ["pytorch_model.bin", "consolidated.safetensors", "model.fp16.safetensors", "flax_model.msgpack"]
    patterns = checkpoint_files_patterns()
    assert all(any(fnmatch.fnmatch(name, p) for p in patterns) for name in wanted)
    assert not any(fnmatch.fnmatch(name, p) for name in unwanted for p in patterns)
