"""The diffusion pre-training recipe end to end on Fashion-MNIST (CI-sized): samples, EMA model,
dense export, FINE learngene, exact resume, other depths from the learngene, sampling through a
diffusers pipeline, and clear errors for bad image data."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DiTTransformer2DModel
from PIL import Image

from hf_learngene import LearngeneConfigError
from hf_learngene.modeling.fine_dit import FINEDiTTransformer2DModel
from hf_learngene.pipelines import ClassConditionalImagePipeline

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import diffusion_pretraining  # noqa: E402

TINY = ["--max_train_samples", "64", "--max_eval_samples", "32", "--layers", "2", "--heads", "2", "--head_dim", "8",
        "--per_device_train_batch_size", "8", "--sampling_steps", "2", "--no_progress_bar"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fine")
    report = diffusion_pretraining.main(TINY + ["--max_train_steps", "6", "--sample_every", "3",
                                                "--checkpointing_steps", "3", "--output_dir", str(folder)])
    return folder, report


def test_sample_every_and_checkpointing_steps_zero_train_to_the_end(tmp_path):
    """0 means never for both (they crashed mid-run with ZeroDivisionError before): no sample grid,
    no held-out loss, one checkpoint at the end, and the model saved."""
    report = diffusion_pretraining.main(TINY + ["--max_train_steps", "2", "--sample_every", "0",
                                                "--checkpointing_steps", "0", "--output_dir", str(tmp_path)])
    assert report["steps"] == 2 and report["heldout_denoising_loss"] == []
    assert not (tmp_path / "samples").exists()
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step-2"]
    assert (tmp_path / "model" / "config.json").is_file()


def test_outputs(trained):
    folder, report = trained
    assert [entry["step"] for entry in report["heldout_denoising_loss"]] == [3, 6]
    assert set(report["saved"]) == {"model", "dense", "learngene"}
    grid = Image.open(folder / "samples" / "step-6.png")
    assert grid.size == (4 * 28, 10 * 28)  # a row of 4 samples per Fashion-MNIST class
    fine = FINEDiTTransformer2DModel.from_pretrained(folder / "model")
    dense = DiTTransformer2DModel.from_pretrained(folder / "dense")  # plain diffusers, no hf_learngene class
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        a = fine(x, timestep=torch.tensor([10, 500]), class_labels=torch.tensor([0, 9])).sample
        b = dense(x, timestep=torch.tensor([10, 500]), class_labels=torch.tensor([0, 9])).sample
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("which", ["model", "dense"])
def test_pipeline_samples_from_either(trained, which):
    folder, _ = trained
    cls = FINEDiTTransformer2DModel if which == "model" else DiTTransformer2DModel
    pipeline = ClassConditionalImagePipeline(transformer=cls.from_pretrained(folder / which),
                                             scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline([3, 7], num_inference_steps=3, guidance_scale=2.0,
                      generator=torch.Generator().manual_seed(0), output_type="np").images
    assert images.shape == (2, 28, 28, 1) and np.isfinite(images).all()
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 10\)"):
        pipeline([10])


def test_resume_repeats_the_uninterrupted_run(trained, tmp_path):
    folder, _ = trained
    arguments = TINY + ["--max_train_steps", "6", "--sample_every", "3", "--checkpointing_steps", "3"]
    diffusion_pretraining.main(arguments + ["--output_dir", str(tmp_path), "--stop_after_steps", "2"])
    diffusion_pretraining.main(arguments + ["--output_dir", str(tmp_path), "--resume_from_checkpoint", "latest"])
    whole = FINEDiTTransformer2DModel.from_pretrained(folder / "model").state_dict()
    split = FINEDiTTransformer2DModel.from_pretrained(tmp_path / "model").state_dict()
    for name, tensor in whole.items():
        assert torch.allclose(split[name], tensor, atol=1e-6), name


def test_other_depth_from_the_learngene_with_sigma_only_steps(trained, tmp_path):
    folder, _ = trained
    report = diffusion_pretraining.main(TINY[:4] + TINY[6:] + [
        "--layers", "3", "--learngene", str(folder / "learngene"), "--sigma_only_steps", "2",
        "--max_train_steps", "3", "--sample_every", "3", "--output_dir", str(tmp_path)])
    assert report["steps"] == 3
    assert len(FINEDiTTransformer2DModel.from_pretrained(tmp_path / "model").transformer_blocks) == 3


@pytest.mark.parametrize("source,error,message", [
    ("learngene", LearngeneConfigError, "this FINE learngene has attention_head_dim=8, the target asks for 16"),
    ("model_name_or_path", SystemExit, "does not match the requested model: {'attention_head_dim': \\(8, 16\\)}"),
])
def test_a_start_of_another_width_is_refused(trained, tmp_path, source, error, message):
    folder, _ = trained
    saved = folder / ("learngene" if source == "learngene" else "dense")
    with pytest.raises(error, match=message):
        diffusion_pretraining.main(TINY[:8] + ["--head_dim", "16", f"--{source}", str(saved),
                                               "--max_train_steps", "1", "--output_dir", str(tmp_path)])


def test_imagefolder_with_rgb_images_is_converted(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for label in ("circle", "square"):
        (tmp_path / "data" / "train" / label).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(tmp_path / "data" / "train" / label / f"{i}.png")
    report = diffusion_pretraining.main(["--dataset_name", str(tmp_path / "data"), "--image_size", "16",
                                         "--patch_size", "4", "--max_eval_samples", "4", "--layers", "1",
                                         "--heads", "2", "--head_dim", "8", "--per_device_train_batch_size", "4",
                                         "--max_train_steps", "2", "--sample_every", "2", "--sampling_steps", "2",
                                         "--no_progress_bar", "--output_dir", str(tmp_path / "out")])
    assert report["classes"] == ["circle", "square"]
    with pytest.raises(SystemExit):
        diffusion_pretraining.main(["--dataset_name", str(tmp_path / "data"), "--image_size", "16", "--channels", "2",
                                    "--max_train_steps", "1", "--output_dir", str(tmp_path / "bad")])
    assert "argument --channels: invalid choice: 2 (choose from 1, 3)" in capsys.readouterr().err


def test_bad_sizes_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        diffusion_pretraining.main(["--layers", "0", "--output_dir", str(tmp_path)])
    assert "argument --layers: invalid value '0' (out of range); expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        diffusion_pretraining.main(["--patch_size", "5", "--output_dir", str(tmp_path)])
    assert "--image_size 28 is not a multiple of --patch_size 5" in capsys.readouterr().err


def test_a_rebuilt_depth_beats_random_init_after_the_same_steps(tmp_path):
    """FINE's claim at CI size: pre-train a 2-block FINE DiT, rebuild it with 3 blocks from its
    learngene (σ alone for the first 10 steps), and compare held-out denoising loss with the same
    3-block architecture from random init after the same 40 steps."""
    common = ["--max_train_samples", "2000", "--max_eval_samples", "256", "--heads", "2", "--head_dim", "16",
              "--per_device_train_batch_size", "32", "--learning_rate", "1e-3", "--sampling_steps", "2",
              "--checkpointing_steps", "1000", "--report_to", "none", "--no_progress_bar"]
    diffusion_pretraining.main(common + ["--layers", "2", "--max_train_steps", "300", "--sample_every", "300",
                                         "--output_dir", str(tmp_path / "source")])
    losses = {}
    for name, extra in (("learngene", ["--learngene", str(tmp_path / "source" / "learngene"), "--sigma_only_steps", "10"]),
                        ("random", ["--model_type", "fine"])):
        report = diffusion_pretraining.main(common + ["--layers", "3", "--max_train_steps", "40", "--sample_every", "40",
                                                      "--output_dir", str(tmp_path / name)] + extra)
        losses[name] = report["heldout_denoising_loss"][-1]["loss"]
    print(losses)
    assert losses["learngene"] < 0.5 * losses["random"]


def test_per_layer_svd_baseline_keeps_rank_and_depth(trained):
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import fine_variable_depth

    folder, _ = trained
    dense = DiTTransformer2DModel.from_pretrained(folder / "dense")
    built = fine_variable_depth.per_layer_svd(dense, layers=3, rank=2)
    assert len(built.transformer_blocks) == 3
    weight = built.transformer_blocks[2].ff.net[2].weight
    assert torch.linalg.matrix_rank(weight) == 2
    assert torch.equal(built.transformer_blocks[2].ff.net[2].bias, dense.transformer_blocks[1].ff.net[2].bias)


@pytest.mark.parametrize("model_class", [DiTTransformer2DModel, FINEDiTTransformer2DModel])
def test_a_dropped_label_is_the_null_class_in_every_block(model_class):
    """diffusers' DiT gives each block its own label embedding, each dropping labels on its own draw
    in training: the null class guidance samples with would then never be trained as a whole. After
    the recipe's switch, a training forward is deterministic, and a null-labelled sample in training
    is exactly what the pipeline's unconditional branch computes."""
    torch.manual_seed(0)
    model = model_class(num_attention_heads=2, attention_head_dim=8, in_channels=1, num_layers=3, sample_size=8,
                        patch_size=4, num_embeds_ada_norm=10, norm_num_groups=1).train()
    x, t = torch.randn(16, 1, 8, 8), torch.full((16,), 500)
    labels = torch.arange(16) % 10
    with torch.no_grad():
        drawn = [model(x, timestep=t, class_labels=labels).sample for _ in range(2)]
        assert not torch.equal(*drawn)  # diffusers' own per-block draws
        diffusion_pretraining.drop_labels_per_sample(model)
        first, second = (model(x, timestep=t, class_labels=labels).sample for _ in range(2))
        null = torch.full((16,), 10)
        trained_null = model(x, timestep=t, class_labels=null).sample
        sampled_null = model.eval()(x, timestep=t, class_labels=null).sample
    assert torch.equal(first, second)
    assert torch.equal(trained_null, sampled_null)


def test_the_recipe_trains_the_null_class_at_its_rate(tmp_path, monkeypatch):
    seen = []
    forward = FINEDiTTransformer2DModel.forward

    def spy(self, *args, class_labels=None, **kwargs):
        if self.training:
            seen.append(class_labels.clone())
        return forward(self, *args, class_labels=class_labels, **kwargs)

    monkeypatch.setattr(FINEDiTTransformer2DModel, "forward", spy)
    diffusion_pretraining.main(TINY + ["--max_train_steps", "20", "--sample_every", "0", "--checkpointing_steps", "0",
                                       "--class_dropout_prob", "0.25", "--output_dir", str(tmp_path)])
    labels = torch.cat(seen)
    assert len(labels) == 160 and labels.max().item() == 10  # 10 Fashion-MNIST classes, then the null one
    assert 0.15 < (labels == 10).float().mean().item() < 0.35
