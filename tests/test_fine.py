"""FINE's factorized layer and diffusion transformer: shared factors stored once, σ per block,
per-unit gates, freezing the learngene, and exact conversion to a plain diffusers DiT."""

from pathlib import Path

import pytest
import torch
from diffusers import DiTTransformer2DModel

from hf_learngene import LearngeneConfigError, UnsupportedArchitectureError
from hf_learngene.modeling.factorized import FactorizedLinear, SharedFactors
from hf_learngene.modeling.fine_dit import FACTORIZED_TYPES, FINEDiTTransformer2DModel

TINY = dict(num_attention_heads=2, attention_head_dim=8, in_channels=1, num_layers=3, sample_size=8, patch_size=2,
            num_embeds_ada_norm=10, norm_num_groups=1)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return FINEDiTTransformer2DModel(**TINY, rank=8).eval()


def denoise(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, 8, 8, generator=generator)
    with torch.no_grad():
        return model(x, timestep=torch.tensor([3, 7]), class_labels=torch.tensor([1, 4])).sample


def test_factorized_linear_is_u_sigma_v():
    factors = SharedFactors(out_features=12, in_features=6, rank=4)
    layer = FactorizedLinear(factors, rows=(4, 12), sigma=torch.arange(1.0, 5.0))
    x = torch.randn(3, 6)
    expected = x @ (factors.U[4:12] @ torch.diag(torch.arange(1.0, 5.0)) @ factors.V.T).T
    assert torch.allclose(layer(x), expected, atol=1e-5)
    layer.set_gate(torch.tensor([1.0, 0.0, 1.0, 0.0]))  # switch two rank-1 units off
    assert torch.linalg.matrix_rank(layer.weight().detach()) == 2
    with pytest.raises(ValueError, match="the gate needs 4 values"):
        layer.set_gate(torch.ones(3))
    with pytest.raises(LearngeneConfigError, match="rank must be between 1 and min"):
        SharedFactors(4, 6, 5)


def test_one_factor_pair_per_matrix_type_and_sigma_per_block(model):
    names = list(model.state_dict())
    assert [n for n in names if n.startswith("factors.")] == [
        f"factors.{kind}.{m}" for kind in FACTORIZED_TYPES for m in ("U", "V")]
    for index in range(TINY["num_layers"]):
        for paths in FACTORIZED_TYPES.values():
            for path in paths:
                assert f"transformer_blocks.{index}.{path}.sigma" in names
                assert f"transformer_blocks.{index}.{path}.weight" not in names
    dense = DiTTransformer2DModel(**TINY)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in dense.parameters())


def test_to_dense_gives_the_same_outputs_and_loads_with_plain_diffusers(model, tmp_path):
    dense = model.to_dense()
    assert type(dense) is DiTTransformer2DModel
    assert (denoise(dense) - denoise(model)).abs().max().item() <= 1e-5
    dense.save_pretrained(tmp_path / "dense")
    reloaded = DiTTransformer2DModel.from_pretrained(tmp_path / "dense")
    assert (denoise(reloaded) - denoise(model)).abs().max().item() <= 1e-5


def test_save_and_load_keep_the_factorization(model, tmp_path):
    model.save_pretrained(tmp_path / "fine")
    reloaded = FINEDiTTransformer2DModel.from_pretrained(tmp_path / "fine")
    assert reloaded.config.rank == 8
    assert torch.equal(denoise(reloaded), denoise(model))
    # the layers follow the loaded factors, not stale copies
    layer = reloaded.transformer_blocks[1].attn1.to_k
    assert layer.factors is reloaded.factors["attn_qkv"]


def trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_freeze_learngenes_trains_sigma_only(model):
    """FINE's light retraining trains Σ alone: not the factors, biases, norms, embeddings or adaLN."""
    sigmas = {name for name, _ in model.named_parameters() if name.endswith(".sigma")}
    assert len(sigmas) == TINY["num_layers"] * sum(len(paths) for paths in FACTORIZED_TYPES.values())
    model.train()
    model.freeze_learngenes()
    assert trainable(model) == sigmas
    x = torch.randn(2, 1, 8, 8)
    model(x, timestep=torch.tensor([3, 7]), class_labels=torch.tensor([1, 4])).sample.pow(2).mean().backward()
    assert {name for name, p in model.named_parameters() if p.grad is not None} == sigmas
    model.freeze_learngenes(False)
    assert trainable(model) == {name for name, _ in model.named_parameters()}


def test_freeze_learngenes_can_also_train_the_unshared_weights(model):
    factors = {name for name, _ in model.named_parameters() if name.startswith("factors.")}
    model.freeze_learngenes(True, train="sigma_and_unshared")
    assert trainable(model) == {name for name, _ in model.named_parameters()} - factors
    assert any(name.endswith(".bias") for name in trainable(model))
    model.freeze_learngenes(True)  # the recipe's call, once per step: back to σ alone
    assert all(name.endswith(".sigma") for name in trainable(model))
    with pytest.raises(LearngeneConfigError, match="freeze_learngenes\\(train='bias'\\): choose one of 'sigma', "
                                                   "'sigma_and_unshared'"):
        model.freeze_learngenes(train="bias")


def test_learngene_rebuilds_the_source_depth_exactly_and_any_other_depth(model, tmp_path):
    from hf_learngene.modeling.fine_learngene import FINELearngene

    learngene = FINELearngene.extract(model)
    learngene.save_pretrained(tmp_path / "lg")
    learngene = FINELearngene.from_pretrained(tmp_path / "lg")
    same = FINEDiTTransformer2DModel.from_learngene(learngene).eval()  # no size: the source's depth
    assert torch.allclose(denoise(same), denoise(model), atol=1e-6)
    for depth in (1, 2, 6):
        for how in ("interpolate", "linear", "identical", "random"):
            built = FINEDiTTransformer2DModel.from_learngene(tmp_path / "lg", {"layers": depth}, sigma_init=how).eval()
            assert len(built.transformer_blocks) == depth and torch.isfinite(denoise(built)).all()
    middle = FINEDiTTransformer2DModel.from_learngene(learngene, {"num_layers": 5})  # block 1: between source 0 and 1
    expected = (model.transformer_blocks[0].ff.net[2].sigma + model.transformer_blocks[1].ff.net[2].sigma) / 2
    assert torch.allclose(middle.transformer_blocks[1].ff.net[2].sigma, expected)
    assert torch.equal(middle.factors["mlp_in"].U, model.factors["mlp_in"].U)


def test_learngene_bad_input(model, tmp_path):
    from hf_learngene.modeling.fine_learngene import FINELearngene

    learngene = FINELearngene.extract(model)
    with pytest.raises(LearngeneConfigError, match=r"num_layers \(layers\) must be a positive integer .*got 0"):
        FINEDiTTransformer2DModel.from_learngene(learngene, {"layers": 0})
    with pytest.raises(LearngeneConfigError, match="unknown sigma_init 'svd'"):
        FINEDiTTransformer2DModel.from_learngene(learngene, {"layers": 2}, sigma_init="svd")
    for size in ({"head_dim": 16}, {"attention_head_dim": 16}, {"hidden": 32}, "B"):  # what the factors fix
        with pytest.raises(LearngeneConfigError, match="this FINE learngene has .*only the depth"):
            FINEDiTTransformer2DModel.from_learngene(learngene, size)
    for field, value in (("patch_size", 4), ("in_channels", 3)):  # carried over, for every DiT learngene
        with pytest.raises(LearngeneConfigError, match=f"cannot change {field} from"):
            FINEDiTTransformer2DModel.from_learngene(learngene, {"layers": 2}, **{field: value})
    with pytest.raises(LearngeneConfigError, match="size must be a preset name or a dict of sizes, got int"):
        FINEDiTTransformer2DModel.from_learngene(learngene, 2)
    with pytest.raises(UnsupportedArchitectureError, match="comes from a FINEDiTTransformer2DModel"):
        FINELearngene.extract(model.to_dense())


def test_size_takes_a_config_as_every_from_learngene_does(model):
    """A saved DiT's config (dense or FINE, with diffusers' "_" fields) names the depth too."""
    from hf_learngene.modeling.fine_learngene import FINELearngene

    learngene = FINELearngene.extract(model)
    deeper = DiTTransformer2DModel(**{**TINY, "num_layers": 4})
    built = FINEDiTTransformer2DModel.from_learngene(learngene, deeper.config)
    assert len(built.transformer_blocks) == 4 and built.config.rank == model.config.rank


def test_a_diffusion_pipeline_folder_loads_the_fine_model_by_library_name(model, tmp_path):
    """model_index.json names the class by its hf_learngene module, so diffusers finds it on load."""
    from diffusers import DDIMScheduler

    import hf_learngene

    pipeline = hf_learngene.ClassConditionalImagePipeline(transformer=model, scheduler=DDIMScheduler())
    pipeline.save_pretrained(tmp_path / "pipe")
    assert '"hf_learngene.modeling.fine_dit"' in (tmp_path / "pipe" / "model_index.json").read_text()
    loaded = hf_learngene.ClassConditionalImagePipeline.from_pretrained(tmp_path / "pipe")
    assert type(loaded.transformer) is hf_learngene.FINEDiTTransformer2DModel
    assert torch.equal(denoise(loaded.transformer), denoise(model))


def test_corrupt_or_missing_checkpoints_say_so(model, tmp_path):
    from hf_learngene import LearngeneLoadError
    from hf_learngene.modeling.fine_learngene import FINELearngene

    for cls, module in ((FINELearngene, FINELearngene.extract(model)), (FINEDiTTransformer2DModel, model)):
        folder = tmp_path / cls.__name__
        module.save_pretrained(folder)
        weights = next(folder.glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        with pytest.raises(LearngeneLoadError, match=f"cannot load a {cls.__name__} from .*truncated or corrupt"):
            cls.from_pretrained(folder)
        (folder / "config.json").write_text("{ not json")
        with pytest.raises(LearngeneLoadError, match="truncated or corrupt"):
            cls.from_pretrained(folder)
        with pytest.raises(LearngeneLoadError, match="missing"):
            cls.from_pretrained(tmp_path / "nowhere")


def test_a_failed_save_keeps_the_previous_folder(model, tmp_path, monkeypatch):
    from diffusers import ModelMixin

    model.save_pretrained(tmp_path / "fine")
    before = sorted(p.name for p in (tmp_path / "fine").iterdir())

    def break_off(self, folder, **kwargs):
        (Path(folder) / "diffusion_pytorch_model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ModelMixin, "save_pretrained", break_off)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(tmp_path / "fine")
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "fine").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["fine"]  # no staging folder left behind
    assert torch.equal(denoise(FINEDiTTransformer2DModel.from_pretrained(tmp_path / "fine")), denoise(model))


def test_a_fine_learngene_pushes_with_a_card_and_builds_from_the_hub(hub, model, tmp_path):
    from huggingface_hub import ModelCard

    from hf_learngene.modeling.fine_learngene import FINELearngene

    learngene = FINELearngene.extract(model)
    learngene.push_to_hub("tester/tiny-fine")
    card = ModelCard.load("tester/tiny-fine")
    assert card.data.library_name == "hf-learngene" and {"learngene", "learngene-fine", "dit"} <= set(card.data.tags)
    assert card.data.learngene["source_layers"] == model.config.num_layers
    assert 'from_learngene("tester/tiny-fine"' in card.text
    built = FINEDiTTransformer2DModel.from_learngene("tester/tiny-fine", {"layers": model.config.num_layers})
    assert torch.allclose(denoise(built), denoise(model), atol=1e-6)
