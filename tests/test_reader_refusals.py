"""A source checkpoint that does not hold the model its config describes is refused with a clear
error, by the lazy reader and by the whole-model fallback alike: a weight filled with random values
on load must never enter a learngene. Mixtral's per-expert tensors are read lazily and merged as
transformers merges them, instead of loading the whole model."""

import json
import logging
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import hf_learngene.learngene.source as source_module
from hf_learngene import Learngene
from hf_learngene.checkpoint_reader import CheckpointReader, LazyReadUnsupported, UnmappedCheckpointError
from hf_learngene.cli import main as cli_main
from hf_learngene.errors import CheckpointMismatchError, LearngeneLoadError
from hf_learngene.learngene.source import _load_source
from hf_learngene.safetensors_file import SafetensorsFile, SafetensorsFormatError, UnsupportedDtypeError

from conftest import tiny_config, tiny_model
from test_checkpoint_reader import assert_reads_like_from_pretrained


def rewrite(folder: Path, rename=lambda key: key, extra=None) -> None:
    """Rewrite a single-file checkpoint's tensors under other names (``rename`` -> None drops one)."""
    path = folder / "model.safetensors"
    tensors = {rename(key): value for key, value in load_file(path).items() if rename(key)}
    save_file({**tensors, **(extra or {})}, path, metadata={"format": "pt"})


def edit_config(folder: Path, **fields) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def save_as_bin(model: torch.nn.Module, folder: Path, drop: tuple[str, ...] = ()) -> None:
    """A checkpoint without safetensors (what the lazy reader leaves to ``from_pretrained``)."""
    model.config.architectures = [type(model).__name__]  # loaded with its own class, as saved
    model.config.save_pretrained(folder)
    state = {key: value for key, value in model.state_dict().items() if key not in drop}
    torch.save(state, folder / "pytorch_model.bin")


@pytest.fixture
def no_fallback(monkeypatch):
    """Fails a test whose source would be loaded whole."""
    def refuse(*args, **kwargs):
        raise AssertionError("the whole model was loaded")

    monkeypatch.setattr(source_module, "_load_source", refuse)


# ---------------------------------------------------------------------------- a weight missing


def test_a_missing_weight_is_an_error_naming_it_not_random_values(tmp_path, no_fallback):
    tiny_model(tiny_config("llama", 2, 2, 4, 16)).save_pretrained(tmp_path)
    rewrite(tmp_path, lambda key: key.replace("layers.1.mlp.up_proj", "layers.1.mlp.w3"))
    with pytest.raises(CheckpointMismatchError, match=r"no tensor for 1 of the model's weights "
                       r"\(layers.1.mlp.up_proj.weight\), looked for in .*model.safetensors.*"
                       r"does not use \(model.layers.1.mlp.w3.weight\)") as raised:
        Learngene.extract(tmp_path, method="bot", show_progress=False)
    assert not isinstance(raised.value, LazyReadUnsupported)


def test_a_missing_weight_of_a_sharded_checkpoint_names_its_files(tmp_path):
    tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=False)).save_pretrained(tmp_path, max_shard_size="2KB")
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    del index["weight_map"]["lm_head.weight"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointMismatchError, match=r"\(lm_head.weight\), looked for in .*model.safetensors.index"
                                                      r".json \(model-00001-of-0000\d.safetensors, "):
        CheckpointReader(tmp_path)


def test_the_fallback_refuses_a_missing_weight(tmp_path):
    model = tiny_model(tiny_config("llama", 2, 2, 4, 16))
    save_as_bin(model, tmp_path, drop=("model.layers.1.mlp.up_proj.weight",))
    with pytest.raises(CheckpointMismatchError, match=r"no tensor for 1 of the model's weights "
                                                      r"\(model.layers.1.mlp.up_proj.weight\)"):
        Learngene.extract(tmp_path, method="bot", show_progress=False)


def test_the_fallback_takes_a_tied_copy_or_a_fresh_head_left_out(tmp_path):
    """Neither is a weight the learngene would take from random values."""
    model = tiny_model(tiny_config("llama", 2, 2, 4, 16, tied=True))
    save_as_bin(model, tmp_path / "tied", drop=("lm_head.weight",))
    loaded, _ = _load_source(tmp_path / "tied")
    assert torch.equal(loaded.model.layers[1].mlp.up_proj.weight, model.model.layers[1].mlp.up_proj.weight)

    config = tiny_config("llama", 2, 2, 4, 16)
    config.architectures = ["LlamaForSequenceClassification"]
    config.save_pretrained(tmp_path / "head")
    base = {f"model.{key}": value for key, value in model.model.state_dict().items()}
    torch.save(base, tmp_path / "head" / "pytorch_model.bin")  # no score.weight: a fresh task head
    loaded, _ = _load_source(tmp_path / "head")
    assert torch.equal(loaded.model.norm.weight, model.model.norm.weight)


def test_whole_model_loading_is_a_warning_with_the_size(tmp_path, caplog):
    save_as_bin(tiny_model(tiny_config("llama", 2, 2, 4, 16)), tmp_path)
    with caplog.at_level(logging.WARNING, logger=source_module.__name__):
        Learngene.extract(tmp_path, method="bot", show_progress=False)
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING and record.name == source_module.__name__]
    assert any("held in memory (0.00 GB of weights on disk)" in message for message in warnings), warnings


# ---------------------------------------------------------------------------- shapes that do not match


def test_a_config_that_does_not_match_the_weights_is_an_error_with_the_shapes(tmp_path, no_fallback):
    tiny_model(tiny_config("llama", 2, 2, 4, 32)).save_pretrained(tmp_path, max_shard_size="2KB")
    edit_config(tmp_path, intermediate_size=48)
    with pytest.raises(CheckpointMismatchError, match=r"'model.layers.0.mlp.gate_proj.weight' has shape \(32, 8\), "
                                                      r"the model's .* \(48, 8\)"):
        Learngene.extract(tmp_path, method="bot", show_progress=False)


def test_the_command_line_says_so_and_exits_2(tmp_path, capsys, no_fallback):
    tiny_model(tiny_config("llama", 2, 2, 4, 32)).save_pretrained(tmp_path / "src")
    edit_config(tmp_path / "src", intermediate_size=48)
    assert cli_main(["extract", str(tmp_path / "src"), "--method", "bot", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "error:" in error and "has shape (32, 8)" in error and "Traceback" not in error


def test_the_fallback_refuses_a_mismatched_shape(tmp_path):
    save_as_bin(tiny_model(tiny_config("llama", 2, 2, 4, 32)), tmp_path)
    edit_config(tmp_path, intermediate_size=48)
    with pytest.raises(CheckpointMismatchError, match=r"'model.layers.0.mlp.\w+_proj.weight' has shape "
                                                      r"\(\d+, \d+\), the model's"):
        _load_source(tmp_path)


def test_a_failure_inside_the_fallback_is_a_load_error(tmp_path):
    save_as_bin(tiny_model(tiny_config("llama", 2, 2, 4, 16)), tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(LearngeneLoadError, match=f"cannot load the source model '{tmp_path}' with "
                                                 "LlamaForCausalLM.from_pretrained: "):
        Learngene.extract(tmp_path, method="bot", show_progress=False)


# ---------------------------------------------------------------------------- dtypes it cannot read


def test_an_unsupported_dtype_is_named_not_called_corrupt(tmp_path):
    path = tmp_path / "scales.safetensors"
    save_file({"scale": torch.ones(4, dtype=torch.float8_e8m0fnu)}, path)
    with pytest.raises(UnsupportedDtypeError, match=r"unsupported dtype F8_E8M0 of 'scale' \(supported: F64, "):
        SafetensorsFile(path)
    assert issubclass(UnsupportedDtypeError, SafetensorsFormatError)

    tiny_model(tiny_config("llama", 2, 2, 4, 16)).save_pretrained(tmp_path / "model")
    scale = torch.ones(4, dtype=torch.float8_e8m0fnu)
    rewrite(tmp_path / "model", extra={"model.layers.0.mlp.up_proj.weight_scale": scale})
    with pytest.raises(UnmappedCheckpointError, match=r"unsupported dtype F8_E8M0 in .*model.safetensors "
                                                      r"\(tensor 'model.layers.0.mlp.up_proj.weight_scale'; "
                                                      r"supported: F64, "):
        CheckpointReader(tmp_path / "model")


def test_a_quantized_checkpoint_gets_its_own_message_before_its_headers_are_read(tmp_path):
    tiny_model(tiny_config("llama", 2, 2, 4, 16)).save_pretrained(tmp_path)
    rewrite(tmp_path, extra={"model.layers.0.mlp.up_proj.weight_scale": torch.ones(4, dtype=torch.float8_e8m0fnu)})
    edit_config(tmp_path, quantization_config={"quant_method": "mxfp4"})
    with pytest.raises(UnmappedCheckpointError, match=r"holds a quantized checkpoint \(mxfp4\)"):
        CheckpointReader(tmp_path)


# ---------------------------------------------------------------------------- Mixtral's experts


def tiny_mixtral(experts: int) -> transformers.MixtralForCausalLM:
    torch.manual_seed(0)
    config = transformers.MixtralConfig(
        vocab_size=64, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=4, num_local_experts=experts, num_experts_per_tok=2, max_position_embeddings=32,
    )
    return transformers.MixtralForCausalLM(config).to(torch.bfloat16)


def test_mixtral_experts_are_read_lazily_and_merged_as_the_loader_merges_them(tmp_path, monkeypatch):
    """11 experts: expert 10 is stacked after expert 9, not after expert 1 (the loader's natural order)."""
    tiny_mixtral(11).save_pretrained(tmp_path, max_shard_size="2KB")
    stored = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]
    assert "model.layers.0.block_sparse_moe.experts.10.w3.weight" in stored and len(set(stored.values())) > 1
    reader = assert_reads_like_from_pretrained(tmp_path)
    assert reader.canonical_names()["layers.0.mlp.experts.gate_up_proj"] == (11, 8, 8)

    reads = []
    real_read = CheckpointReader._read
    monkeypatch.setattr(CheckpointReader, "_read", lambda self, key: reads.append(key) or real_read(self, key))
    reader.get("layers.1.mlp.experts.down_proj")
    assert reads == [f"model.layers.1.block_sparse_moe.experts.{n}.w2.weight" for n in range(11)]


def test_a_mixtral_is_extracted_without_loading_it_whole(tmp_path, no_fallback):
    tiny_mixtral(2).save_pretrained(tmp_path, max_shard_size="2KB")
    assert Learngene.extract(tmp_path, method="bot", show_progress=False).config.method == "bot"


def test_a_mixtral_missing_an_expert_is_an_error(tmp_path):
    tiny_mixtral(2).save_pretrained(tmp_path)
    rewrite(tmp_path, lambda key: None if key == "model.layers.1.block_sparse_moe.experts.1.w3.weight" else key)
    with pytest.raises(CheckpointMismatchError, match=r"cannot be merged|has shape"):
        CheckpointReader(tmp_path)


# ---------------------------------------------------------------------------- diffusers through the fallback


def tiny_dit():
    import diffusers

    torch.manual_seed(0)
    return diffusers.DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=4, out_channels=8, num_layers=2, sample_size=8,
        patch_size=2, num_embeds_ada_norm=10, norm_num_groups=1,
    )


def test_a_diffusers_model_without_safetensors_loads_whole_and_checked(tmp_path):
    model = tiny_dit()
    model.save_pretrained(tmp_path / "whole", safe_serialization=False)
    lazy_less = Learngene.extract(tmp_path / "whole", method="bot", show_progress=False)
    direct = Learngene.extract(model, method="bot", show_progress=False)
    assert all(torch.equal(lazy_less.coefficients[key], tensor) for key, tensor in direct.coefficients.items())

    model.save_pretrained(tmp_path / "missing", safe_serialization=False)
    path = tmp_path / "missing" / "diffusion_pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    del state["transformer_blocks.1.ff.net.2.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match=r"no tensor for 1 .*\(transformer_blocks.1.ff.net.2.weight\)"):
        Learngene.extract(tmp_path / "missing", method="bot", show_progress=False)
