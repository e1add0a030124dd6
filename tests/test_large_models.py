"""Billion-parameter paths at CI size: a build made on the meta device in its final dtype, the
same build streamed to sharded files, lazy extraction from a sharded checkpoint, and sharded
learngenes."""

import json

import pytest
import torch
import transformers
from diffusers import DiTTransformer2DModel, UNet2DModel
from safetensors.torch import load_file

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError, LearngeneLoadError, PIPMNConfig, PIPMNForAudioClassification
from hf_learngene.cli import main as cli
from hf_learngene.learngene import canonical_state

from conftest import forward_backward, tiny_config, tiny_model
from test_diffusers_tables import DIT, UNET, trained_like

FAMILIES = ("bert", "gpt2", "llama", "vit", "deit")


def llama_learngene(method="bot", tied=False, **options):
    source = tiny_model(tiny_config("llama", layers=3, heads=4, head_dim=6, intermediate=40, kv_heads=2, tied=tied))
    return source, Learngene.extract(source, method=method, show_progress=False, **options)


def assert_same_tensors(expected: dict, got: dict, skip=()):
    assert set(expected) - set(skip) <= set(got)
    for name, tensor in expected.items():
        if name in skip:
            continue
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name


# ---------------------------------------------------------------- dtype and device, every family


def family_learngenes():
    for family in FAMILIES:
        config = tiny_config(family, layers=2, heads=2, head_dim=4, intermediate=12, kv_heads=1, tied=False)
        yield family, Learngene.extract(tiny_model(config), method="bot", show_progress=False), None
    torch.manual_seed(0)
    yield "dit", Learngene.extract(trained_like(DiTTransformer2DModel(**DIT)), show_progress=False), None
    yield "unet", Learngene.extract(trained_like(UNet2DModel(**UNET)), show_progress=False), None
    pipmn = PIPMNForAudioClassification(PIPMNConfig(num_labels=3))
    yield "pipmn", Learngene.extract(pipmn, show_progress=False), hf_learngene.AutoModelForAudioClassification


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, "float32"])
def test_every_family_builds_in_the_dtype_asked_for(dtype):
    expected = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    for family, learngene, auto_class in family_learngenes():
        model = learngene.build(None, auto_class, dtype=dtype, device="cpu", show_progress=False)
        floating = [t for t in model.parameters()]
        assert floating and all(t.dtype == expected for t in floating), family
        assert all(t.device.type == "cpu" and not t.is_meta for t in model.state_dict().values()), family
        reference = canonical_state(learngene.build(None, auto_class, show_progress=False))  # float32, then rounded
        compared = 0
        for name, tensor in canonical_state(model).items():
            roles = [param.role for param, _ in learngene.architecture.matches(name, model.config)]
            if any(role in learngene.config.roles for role in roles):  # not a fresh head
                assert torch.equal(tensor, reference[name].to(expected)), f"{family}: {name}"
                compared += 1
        assert compared >= len(learngene.config.roles) // 2, family


def test_a_build_makes_no_tensor_twice_and_leaves_nothing_on_meta():
    _, learngene = llama_learngene(tied=True)
    model = learngene.build({"layers": 4, "hidden": 48, "heads": 8, "kv_heads": 2, "intermediate": 64},
                            hf_learngene.AutoModelForCausalLM, dtype=torch.bfloat16, show_progress=False)
    assert not any(t.is_meta for t in model.state_dict().values())
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert model.config.dtype == torch.bfloat16
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32  # buffers as transformers makes them
    forward_backward(model.float())


def test_fresh_heads_get_their_normal_initialisation():
    _, learngene = llama_learngene()
    torch.manual_seed(0)
    model = learngene.build(None, hf_learngene.AutoModelForSequenceClassification, num_labels=3, show_progress=False)
    std = model.config.initializer_range
    assert model.score.weight.std().item() == pytest.approx(std, rel=0.3)


def test_building_leaves_the_learngene_as_it_was():
    _, learngene = llama_learngene("bot")
    before = {key: tensor.clone() for key, tensor in learngene.state_dict().items()}
    first = learngene.build(None, show_progress=False).state_dict()
    assert_same_tensors(before, learngene.state_dict())
    assert_same_tensors(first, learngene.build(None, show_progress=False).state_dict())


def test_bad_build_and_extract_arguments_are_refused_before_anything_is_written(tmp_path):
    source, learngene = llama_learngene()
    with pytest.raises(LearngeneConfigError, match="max_shard_size='lots' is not a size"):
        learngene.build_pretrained(tmp_path / "built", max_shard_size="lots", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="storage_dtype='int8' is not supported"):
        Learngene.extract(source, save_directory=tmp_path / "lg", storage_dtype="int8", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="floating torch dtype"):
        learngene.build_pretrained(tmp_path / "built", dtype="int8", show_progress=False)
    assert not list(tmp_path.iterdir())


def test_a_bad_dtype_is_refused():
    _, learngene = llama_learngene()
    with pytest.raises(LearngeneConfigError, match="floating torch dtype"):
        learngene.build(None, dtype=torch.int8, show_progress=False)
    with pytest.raises(LearngeneConfigError, match="floating torch dtype"):
        learngene.build(None, dtype="bfloat17", show_progress=False)


# ---------------------------------------------------------------- streaming to disk


@pytest.mark.parametrize("method", ["front", "bot", "weight_selection", "hypercloning"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_streamed_build_equals_the_in_memory_build_bit_for_bit(method, dtype, tmp_path):
    _, learngene = llama_learngene(method)
    size = {"layers": 6, "hidden": 48, "heads": 8, "kv_heads": 4, "intermediate": 80}
    if method == "hypercloning":  # grows width only
        size = {"hidden": 48, "heads": 8, "kv_heads": 4, "intermediate": 80}
    if method == "weight_selection":  # shrinks only
        size = {"layers": 2, "hidden": 12, "heads": 2, "kv_heads": 1, "intermediate": 20}
    in_memory = learngene.build(size, hf_learngene.AutoModelForCausalLM, dtype=dtype, show_progress=False)
    folder = learngene.build_pretrained(tmp_path / "built", size, hf_learngene.AutoModelForCausalLM, dtype=dtype,
                                        max_shard_size="4kB", show_progress=False)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2  # really sharded
    loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    assert type(loaded) is type(in_memory)
    assert_same_tensors(in_memory.state_dict(), loaded.state_dict())
    assert loaded.config.learngene["method"] == method
    assert (folder / "README.md").is_file() and (folder / "generation_config.json").is_file()


def test_streaming_a_classifier_initialises_its_head_and_ships_the_tokenizer(minilm_dir, tmp_path):
    learngene = Learngene.extract(minilm_dir, method="bot", show_progress=False)
    folder = learngene.build_pretrained(tmp_path / "clf", "mini", hf_learngene.AutoModelForSequenceClassification,
                                        num_labels=2, max_shard_size="2MB", show_progress=False)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    in_memory = learngene.build("mini", hf_learngene.AutoModelForSequenceClassification, num_labels=2,
                                show_progress=False)
    fresh = {name for name in in_memory.state_dict() if name.startswith("classifier.")}
    assert fresh
    assert_same_tensors(in_memory.state_dict(), model.state_dict(), skip=fresh)
    assert 0 < model.classifier.weight.std().item() < 0.1
    assert transformers.AutoTokenizer.from_pretrained(folder)("a review").input_ids


class BrokenFiles:
    def get(self, role):
        raise LearngeneLoadError(f"{role}: the shard is corrupt")


def test_a_failed_streamed_build_leaves_no_folder(tmp_path):
    _, learngene = llama_learngene()
    with pytest.raises(LearngeneConfigError, match="even"):
        learngene.build_pretrained(tmp_path / "built", {"heads": 6, "kv_heads": 3, "hidden": 30}, show_progress=False)
    with pytest.raises(LearngeneLoadError, match="corrupt"):  # fails after the first shards are written
        learngene._files = BrokenFiles()
        learngene.coefficients["layers__{layer}__mlp__up_proj__weight"] = torch.nn.Parameter(torch.empty(0, device="meta"))
        learngene.build_pretrained(tmp_path / "built", max_shard_size="2kB", show_progress=False)
    assert not (tmp_path / "built").exists()
    assert not list(tmp_path.iterdir())


def test_the_cli_build_streams_and_inspect_estimates(tmp_path, capsys):
    _, learngene = llama_learngene()
    learngene.save_pretrained(tmp_path / "lg")
    assert cli(["inspect", str(tmp_path / "lg"), "--size", "layers=4,hidden=48,heads=8,kv_heads=4,intermediate=64",
                "--task", "causal-lm", "--dtype", "bfloat16", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["build"]
    assert plan["model_class"] == "LlamaForCausalLM" and plan["dtype"] == "bfloat16"
    assert plan["bytes"] == plan["parameters"] * 2 and plan["peak_build_bytes"] > plan["bytes"]
    assert cli(["build", str(tmp_path / "lg"), "--size", "layers=4,hidden=48,heads=8,kv_heads=4,intermediate=64",
                "--task", "causal-lm", "--dtype", "bfloat16", "--max-shard-size", "30kB",
                "--out", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert f"{plan['parameters']:,} parameters" in out
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert sum(p.numel() for p in model.parameters()) == plan["parameters"]


# ---------------------------------------------------------------- sharded learngenes


@pytest.mark.parametrize("storage_dtype", ["float32", "bfloat16"])
def test_a_sharded_learngene_round_trips(storage_dtype, tmp_path):
    _, learngene = llama_learngene("front")
    learngene.save_pretrained(tmp_path / "lg", max_shard_size="10kB", storage_dtype=storage_dtype)
    index = json.loads((tmp_path / "lg" / "learngene.safetensors.index.json").read_text())
    assert len(index["metadata"]["shard_checksums"]) > 2
    loaded = Learngene.from_pretrained(tmp_path / "lg")
    lazy = Learngene.from_pretrained(tmp_path / "lg", low_cpu_mem_usage=True)
    assert loaded.config.storage_dtype == storage_dtype
    for role in learngene.config.roles:
        key = role.replace(".", "__")
        expected = learngene.coefficients[key].detach()
        if storage_dtype == "bfloat16":
            expected = expected.bfloat16().float()
        assert torch.equal(loaded.coefficients[key].detach(), expected), role
        assert lazy.coefficients[key].is_meta
    size = {"layers": 4, "hidden": 36, "heads": 6, "kv_heads": 3, "intermediate": 50}
    assert_same_tensors(loaded.build(size, show_progress=False).state_dict(),
                        lazy.build(size, show_progress=False).state_dict())


def test_bfloat16_storage_halves_the_bytes(tmp_path):
    _, learngene = llama_learngene("front")
    learngene.save_pretrained(tmp_path / "fp32")
    learngene.save_pretrained(tmp_path / "bf16", storage_dtype="bfloat16")
    size = lambda folder: (folder / "learngene.safetensors").stat().st_size
    assert size(tmp_path / "bf16") < 0.55 * size(tmp_path / "fp32")
    assert Learngene.from_pretrained(tmp_path / "bf16").summary()["stored_bytes"] * 2 == learngene.summary()["stored_bytes"]


def test_a_corrupt_or_missing_shard_is_named(tmp_path):
    _, learngene = llama_learngene("front")
    learngene.save_pretrained(tmp_path / "lg", max_shard_size="10kB")
    shards = sorted((tmp_path / "lg").glob("learngene-*.safetensors"))
    data = bytearray(shards[1].read_bytes())
    data[-5] ^= 0xFF
    shards[1].write_bytes(bytes(data))
    with pytest.raises(LearngeneLoadError, match=f"{shards[1].name}.*truncated or corrupt"):
        Learngene.from_pretrained(tmp_path / "lg")
    lazy = Learngene.from_pretrained(tmp_path / "lg", low_cpu_mem_usage=True)  # nothing read yet
    with pytest.raises(LearngeneLoadError, match=shards[1].name):
        lazy.build(None, show_progress=False)
    shards[2].unlink()
    with pytest.raises(LearngeneLoadError, match=f"{shards[2].name} is missing"):
        Learngene.from_pretrained(tmp_path / "lg", low_cpu_mem_usage=True)


# ---------------------------------------------------------------- extraction without the model


@pytest.mark.parametrize("family", FAMILIES)
def test_lazy_extraction_from_a_sharded_checkpoint_equals_eager_extraction(family, tmp_path):
    source = tiny_model(tiny_config(family, layers=3, heads=4, head_dim=6, intermediate=40, kv_heads=2, tied=False))
    source.save_pretrained(tmp_path / "source", max_shard_size="20kB")
    assert (tmp_path / "source" / "model.safetensors.index.json").is_file()
    eager = Learngene.extract(source, method="front", show_progress=False)
    lazy = Learngene.extract(tmp_path / "source", method="front", show_progress=False)
    assert lazy.config.roles == eager.config.roles
    assert lazy.config.source_config == eager.config.source_config
    for key, tensor in eager.coefficients.items():
        assert torch.equal(lazy.coefficients[key], tensor), key


def test_streaming_extraction_writes_each_role_and_reads_them_back_lazily(tmp_path):
    source = tiny_model(tiny_config("llama", layers=3, heads=4, head_dim=6, intermediate=40, kv_heads=2, tied=False))
    source.save_pretrained(tmp_path / "source", max_shard_size="20kB")
    streamed = Learngene.extract(tmp_path / "source", method="bot", save_directory=tmp_path / "lg",
                                 max_shard_size="10kB", show_progress=False)
    assert (tmp_path / "lg" / "learngene.safetensors.index.json").is_file()
    assert all(parameter.is_meta for parameter in streamed.parameters())
    eager = Learngene.extract(source, method="bot", show_progress=False)
    size = {"layers": 5, "hidden": 48, "heads": 8, "kv_heads": 4, "intermediate": 64}
    assert_same_tensors(eager.build(size, show_progress=False).state_dict(),
                        streamed.build(size, show_progress=False).state_dict())
    assert cli(["extract", str(tmp_path / "source"), "--method", "bot", "--out", str(tmp_path / "cli"),
                "--max-shard-size", "10kB", "--storage-dtype", "bfloat16"]) == 0
    assert Learngene.from_pretrained(tmp_path / "cli").config.storage_dtype == "bfloat16"


# ---------------------------------------------------------------- what the learngene does not hold


def test_a_streamed_build_writes_the_tensors_the_learngene_lacks(minilm_dir, tmp_path):
    """A masked-LM source has no pooler: a sequence classifier's pooler and head are made fresh, and
    written, so the folder loads with nothing missing."""
    learngene = Learngene.extract(minilm_dir, method="bot", show_progress=False)
    folder = learngene.build_pretrained(tmp_path / "clf", "mini", hf_learngene.AutoModelForSequenceClassification,
                                        num_labels=2, show_progress=False)
    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    random = Learngene.extract(minilm_dir, method="random", show_progress=False)
    folder = random.build_pretrained(tmp_path / "random", "mini", hf_learngene.AutoModelForMaskedLM, show_progress=False)
    _, info = transformers.AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]


def test_a_fresh_diffusers_layer_keeps_the_learngene_weights_beside_it():
    """DiT without attention biases → with them: the biases are new, the weights beside them are the learngene's."""
    torch.manual_seed(0)
    source = trained_like(DiTTransformer2DModel(**{**DIT, "attention_bias": False}))
    learngene = Learngene.extract(source, show_progress=False)
    model = learngene.build(None, attention_bias=True, show_progress=False)
    block = model.transformer_blocks[0].attn1
    torch.testing.assert_close(block.to_q.weight, source.transformer_blocks[0].attn1.to_q.weight, rtol=0, atol=1e-6)
    assert block.to_q.bias is not None and not block.to_q.bias.is_meta


def test_the_random_baseline_of_a_diffusers_model_is_its_own_initialisation():
    torch.manual_seed(0)
    learngene = Learngene.extract(DiTTransformer2DModel(**DIT), method="random", show_progress=False)
    torch.manual_seed(3)
    built = learngene.build(None, show_progress=False)
    torch.manual_seed(3)
    expected = DiTTransformer2DModel(**DIT)
    assert_same_tensors(expected.state_dict(), built.state_dict())


def test_a_lazy_learngene_reads_what_it_loaded_even_if_its_folder_is_saved_over(tmp_path):
    _, first = llama_learngene("bot")
    first.save_pretrained(tmp_path / "lg", max_shard_size="10kB")
    lazy = Learngene.from_pretrained(tmp_path / "lg", low_cpu_mem_usage=True)
    expected = lazy.build(None, show_progress=False).state_dict()
    source = tiny_model(tiny_config("llama", layers=3, heads=4, head_dim=6, intermediate=40, kv_heads=2), seed=5)
    Learngene.extract(source, method="bot", show_progress=False).save_pretrained(tmp_path / "lg", max_shard_size="10kB")
    assert_same_tensors(expected, lazy.build(None, show_progress=False).state_dict())


def test_a_learngene_file_rewritten_in_place_is_refused_not_mixed_in(tmp_path):
    _, learngene = llama_learngene("bot")
    learngene.save_pretrained(tmp_path / "lg")
    lazy = Learngene.from_pretrained(tmp_path / "lg", low_cpu_mem_usage=True)
    lazy.build(None, show_progress=False)
    weights = tmp_path / "lg" / "learngene.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    with open(weights, "r+b") as handle:  # same file, new bytes
        handle.write(bytes(data))
    with pytest.raises(LearngeneLoadError, match="rewritten after the learngene was loaded"):
        lazy.build(None, show_progress=False)
