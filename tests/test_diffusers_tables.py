"""FRONT and BoT resize diffusers models: DiT (depth, width, heads) and UNet2DModel (every level's
channels, conv kernels included); the results are plain diffusers models."""

import json

import pytest
import torch
from diffusers import DiTTransformer2DModel, UNet2DModel

from hf_learngene import Learngene
from hf_learngene.errors import LearngeneConfigError, UnsupportedArchitectureError
from hf_learngene.modeling.fine_dit import FINEDiTTransformer2DModel

METHODS = ("front", "bot")
DIT = dict(num_attention_heads=2, attention_head_dim=8, in_channels=1, out_channels=1, num_layers=3, sample_size=8,
           patch_size=2, num_embeds_ada_norm=10)
UNET = dict(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(16, 32), layers_per_block=1,
            norm_num_groups=8, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"), num_class_embeds=10)


def trained_like(model, seed=0):
    """A model whose weights are all non-trivial (diffusers zero-initialises the adaLN-Zero gates)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2 + 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def dit():
    torch.manual_seed(0)
    return trained_like(DiTTransformer2DModel(**DIT))


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return trained_like(UNet2DModel(**UNET))


def denoise(model, size, seed=1):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, 1, size, size, generator=generator)
    with torch.no_grad():
        return model(sample, timestep=torch.tensor([10, 700]), class_labels=torch.tensor([1, 7])).sample


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["dit", "unet"])
def test_the_source_size_is_rebuilt_exactly(kind, method, request):
    model = request.getfixturevalue(kind)
    rebuilt = Learngene.extract(model, method=method, show_progress=False).build(show_progress=False)
    assert type(rebuilt) is type(model)
    expected, got = model.state_dict(), rebuilt.state_dict()
    assert expected.keys() == got.keys()
    assert max((expected[k] - got[k]).abs().max().item() for k in expected) <= 1e-5


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "size, expected",
    [
        ({"layers": 5}, (5, 2, 8)),
        ({"layers": 2, "heads": 4}, (2, 4, 8)),
        ({"heads": 1, "head_dim": 12}, (3, 1, 12)),
        ({"hidden": 32}, (3, 2, 16)),
    ],
)
def test_dit_depth_width_and_heads(dit, method, size, expected, tmp_path):
    learngene = Learngene.extract(dit, method=method, show_progress=False)
    built = learngene.build(size, show_progress=False)
    config = built.config
    assert (config.num_layers, config.num_attention_heads, config.attention_head_dim) == expected
    out = denoise(built, 8)
    assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all()
    built.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["_learngene"]["method"] == method and saved["_learngene"]["sizes"]["layers"] == expected[0]
    reloaded, info = DiTTransformer2DModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    assert torch.equal(denoise(reloaded, 8), out)


def test_bot_doubling_the_heads_of_a_dit_nearly_keeps_its_function(dit):
    """Haar duplication of every head with fan-in-preserving rescaling keeps the source's function up
    to DiT's fixed sin-cos position embedding, which diffusers recomputes for the new width."""
    learngene = Learngene.extract(dit, method="bot", rescaling="preserve_function", show_progress=False)
    wider = learngene.build({"heads": 4}, show_progress=False)
    reference = denoise(dit, 8)
    relative_error = ((denoise(wider, 8) - reference).norm() / reference.norm()).item()
    assert relative_error < 0.1  # measured 0.049; a random init of the same size is at 5.3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("channels", [(32, 64), (8, 16), (16, 16), (24, 40)])
def test_unet_channels_per_level(unet, method, channels, tmp_path):
    learngene = Learngene.extract(unet, method=method, show_progress=False)
    built = learngene.build({"block_out_channels": channels}, show_progress=False)
    assert tuple(built.config.block_out_channels) == channels
    assert built.conv_in.weight.shape == (channels[0], 1, 3, 3)
    assert built.up_blocks[0].resnets[0].conv1.weight.shape == (channels[1], 2 * channels[1], 3, 3)
    out = denoise(built, 16)
    assert out.shape == (2, 1, 16, 16) and torch.isfinite(out).all()
    built.save_pretrained(tmp_path)
    reloaded, info = UNet2DModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    assert torch.equal(denoise(reloaded, 16), out)


def test_unet_skip_and_input_parts_are_resized_apart(unet):
    """An up-block resnet's input is [previous level ; skip]: each part keeps its own source rows."""
    learngene = Learngene.extract(unet, method="front", show_progress=False)
    # only level 0 grows: parts from level 1 are exact copies, parts from level 0 are resampled
    built = learngene.build({"block_out_channels": (24, 32)}, show_progress=False)
    source_conv = unet.up_blocks[0].resnets[1].conv1.weight  # input = [level 1 (32) ; skip from level 0 (16)]
    built_conv = built.up_blocks[0].resnets[1].conv1.weight  # input = [32 ; 24]
    assert built_conv.shape == (32, 56, 3, 3)
    assert torch.allclose(built_conv[:, :32], source_conv[:, :32], atol=1e-5)


def test_a_diffusers_learngene_saves_loads_and_extracts_from_a_folder(dit, tmp_path):
    dit.save_pretrained(tmp_path / "dit")
    learngene = Learngene.extract(tmp_path / "dit", method="front", keep=0.5, show_progress=False)
    assert learngene.summary()["model_type"] == "DiTTransformer2DModel"
    assert learngene.summary()["compression"] > 1
    learngene.save_pretrained(tmp_path / "lg")
    loaded = Learngene.from_pretrained(tmp_path / "lg")
    built, reloaded = learngene.build({"layers": 4}, show_progress=False), loaded.build({"layers": 4}, show_progress=False)
    assert torch.equal(denoise(built, 8), denoise(reloaded, 8))


def test_bad_size_requests_say_what_is_wrong(dit, unet):
    dit_lg = Learngene.extract(dit, method="front", show_progress=False)
    unet_lg = Learngene.extract(unet, method="bot", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="cannot change patch_size from 2 to 4"):
        dit_lg.build({"patch_size": 4})
    with pytest.raises(LearngeneConfigError, match="num_layers .*positive integer"):
        dit_lg.build({"layers": 0})
    with pytest.raises(LearngeneConfigError, match="hidden size 30 must be a positive multiple of the head count 4"):
        dit_lg.build({"hidden": 30, "heads": 4})
    with pytest.raises(LearngeneConfigError, match="unknown size preset 'huge'.*S, B, L, XL"):
        dit_lg.build("huge")
    with pytest.raises(LearngeneConfigError, match="depth is not a field of DiTTransformer2DModel"):
        dit_lg.build({"depth": 4})
    with pytest.raises(LearngeneConfigError, match="keep the source's 2 levels"):
        unet_lg.build({"block_out_channels": (16, 32, 64)})
    with pytest.raises(LearngeneConfigError, match="divisible by norm_num_groups=8"):
        unet_lg.build({"block_out_channels": (12, 32)})
    with pytest.raises(LearngeneConfigError, match="attention widths \\[40, 40\\] must be divisible by attention_head_dim=16"):
        unet_lg.build({"block_out_channels": (16, 40)}, norm_num_groups=4, attention_head_dim=16)
    with pytest.raises(LearngeneConfigError, match="cannot change layers_per_block"):
        unet_lg.build({"layers_per_block": 2})


def test_unsupported_diffusers_models_are_named(dit):
    fine = FINEDiTTransformer2DModel(**DIT, rank=4)
    with pytest.raises(UnsupportedArchitectureError, match="FINEDiTTransformer2DModel.*to_dense"):
        Learngene.extract(fine)
    skip_unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(16, 32),
                            layers_per_block=1, norm_num_groups=8, down_block_types=("SkipDownBlock2D", "DownBlock2D"),
                            up_block_types=("UpBlock2D", "SkipUpBlock2D"))
    with pytest.raises(LearngeneConfigError, match="UNet2DModel table covers the blocks.*SkipDownBlock2D"):
        Learngene.extract(skip_unet)


def test_a_diffusers_learngene_card_shows_diffusers_usage(hub, unet):
    from huggingface_hub import ModelCard

    Learngene.extract(unet, method="bot", show_progress=False).push_to_hub("tester/tiny-unet-bot")
    card = ModelCard.load("tester/tiny-unet-bot")
    assert {"learngene", "learngene-bot", "unet"} <= set(card.data.tags)
    assert "learngene.build({'channels': [16, 32]})" in card.text and "diffusers` `UNet2DModel`" in card.text
    built = Learngene.from_pretrained("tester/tiny-unet-bot").build({"channels": [32, 32]}, show_progress=False)
    assert isinstance(built, UNet2DModel) and list(built.config.block_out_channels) == [32, 32]
