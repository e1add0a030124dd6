"""The recipes under two processes (torchrun, CPU, gloo): DDP and FSDP2 through accelerate.

Every count is one of global optimizer steps whatever the process count; each rank draws its own
data; FINE's σ-only stage runs under DDP; FSDP trains, saves a full state dict that plain
``from_pretrained`` loads, and resumes.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from test_audio_recipe import drum_audiofolder
from test_recipes import classification_args, learngene_dir, review_files  # noqa: F401 (fixtures)

RECIPES = Path(__file__).parents[1] / "recipes"
sys.path.insert(0, str(RECIPES))
import diffusion_pretraining  # noqa: E402
import text_classification  # noqa: E402

pytestmark = pytest.mark.slow
FSDP_ENV = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
            "FSDP_RESHARD_AFTER_FORWARD": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(script: str, arguments: list[str], env: dict | None = None, processes: int = 2) -> None:
    """Run a recipe under ``torchrun --nproc_per_node processes`` on CPU; fail with its output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(RECIPES / script), *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def logged(folder: Path, name: str) -> list[tuple[int, float]]:
    rows = [line.split(",") for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
    return [(int(row[0]), float(row[2])) for row in rows if row[1] == name]


def test_two_processes_follow_the_schedule_of_one_with_twice_the_batch(review_files, learngene_dir, tmp_path):
    """Per-device batch 4 on 2 processes logs the same learning rate at every step, and the same
    number of optimizer steps, as 1 process with batch 8 (accelerate would step a prepared
    schedule once per process, ending it halfway)."""
    two = tmp_path / "two"
    arguments = classification_args(review_files, learngene_dir, two, "--selection_fraction", "0",
                                    "--num_warmup_steps", "2")
    arguments[arguments.index("--per_device_train_batch_size") + 1] = "4"
    torchrun("text_classification.py", arguments)
    one = tmp_path / "one"
    text_classification.main(classification_args(review_files, learngene_dir, one, "--selection_fraction", "0",
                                                 "--num_warmup_steps", "2"))
    lr_two, lr_one = logged(two, "train/lr"), logged(one, "train/lr")
    assert [step for step, _ in lr_one] == list(range(1, 11))  # 40 reviews, batch 8, 2 epochs
    assert [step for step, _ in lr_two] == [step for step, _ in lr_one]
    assert [lr for _, lr in lr_two] == pytest.approx([lr for _, lr in lr_one], rel=1e-9)
    assert lr_one[-1][1] == 0.0 and max(lr for _, lr in lr_one) == pytest.approx(1e-4)
    assert json.loads((two / "results.json").read_text())["processes"] == 2


def test_every_fold_of_a_cross_validation_trains_under_two_processes(tmp_path):
    """accelerate's end_training destroys the process group: ended after each fold, the second fold's
    first collective failed ("Default process group has not been initialized")."""
    out = tmp_path / "folds"
    torchrun("audio_classification.py", ["--dataset_name", str(drum_audiofolder(tmp_path / "drums", per_class=2)),
                                         "--folds", "2", "--num_train_epochs", "1", "--per_device_train_batch_size",
                                         "1", "--encoder_channels", "8", "16", "--no_progress_bar",
                                         "--output_dir", str(out)])
    assert len(json.loads((out / "results.json").read_text())["fold_accuracy"]) == 2
    for fold in range(2):
        report = json.loads((out / f"fold-{fold}" / "results.json").read_text())
        assert report["processes"] == 2 and report["history"][-1]["step"] == 1  # 2 training clips, 1 per process


def test_ranks_draw_disjoint_parts_of_the_global_batch():
    order = list(range(100))
    parts = [diffusion_pretraining.rank_batch(order, 3, 8, 2, rank).tolist() for rank in range(2)]
    assert parts[0] + parts[1] == diffusion_pretraining.rank_batch(order, 3, 16, 1, 0).tolist()
    assert not set(parts[0]) & set(parts[1])


@pytest.fixture(scope="module")
def fine_learngene(tmp_path_factory):
    """The FINE learngene of a tiny 2-block FINE DiT trained for 4 steps (one process)."""
    folder = tmp_path_factory.mktemp("fine-source")
    diffusion_pretraining.main(["--max_train_samples", "64", "--max_eval_samples", "16", "--layers", "2",
                                "--heads", "2", "--head_dim", "8", "--per_device_train_batch_size", "8",
                                "--sampling_steps", "1", "--max_train_steps", "4", "--sample_every", "4",
                                "--no_progress_bar", "--output_dir", str(folder)])
    return folder / "learngene"


TINY_DIT = ["--max_train_samples", "64", "--max_eval_samples", "16", "--heads", "2", "--head_dim", "8",
            "--per_device_train_batch_size", "4", "--sampling_steps", "1", "--no_progress_bar"]


def test_fine_sigma_only_stage_under_ddp(fine_learngene, tmp_path):
    """A 3-block FINE DiT from the learngene trains σ alone for 2 steps, then everything, on 2 processes:
    after the σ-only stage only σ has moved; afterwards the factors move too."""
    from hf_learngene.modeling.fine_dit import FINEDiTTransformer2DModel
    from hf_learngene.modeling.fine_learngene import FINELearngene

    out = tmp_path / "ddp"
    torchrun("diffusion_pretraining.py", TINY_DIT + ["--learngene", str(fine_learngene), "--layers", "3",
                                                     "--sigma_only_steps", "2", "--max_train_steps", "4",
                                                     "--sample_every", "4", "--checkpointing_steps", "2",
                                                     "--output_dir", str(out)])
    start = FINEDiTTransformer2DModel.from_learngene(FINELearngene.from_pretrained(fine_learngene), {"layers": 3},
                                                     sigma_init="interpolate", seed=0).state_dict()
    after_sigma = load_file(out / "checkpoints" / "step-2" / "model.safetensors")
    after_all = load_file(out / "checkpoints" / "step-4" / "model.safetensors")
    sigma = [name for name in start if name.endswith(".sigma")]
    others = [name for name in start if not name.endswith(".sigma")]
    assert sigma and all(not torch.equal(after_sigma[n], start[n]) for n in sigma)
    assert all(torch.equal(after_sigma[n], start[n]) for n in others)  # σ only: nothing else moved
    assert any(not torch.equal(after_all[n], start[n]) for n in others if n.startswith("factors."))
    report = json.loads((out / "results.json").read_text())
    assert report["steps"] == 4 and report["processes"] == 2 and set(report["saved"]) == {"model", "dense", "learngene"}


def test_fsdp_text_classification_saves_full_weights_and_resumes(review_files, learngene_dir, tmp_path):
    """Sharded checkpoints, and the other ranks loading on the meta device what the main process built
    (``fsdp_cpu_ram_efficient_loading``, as recipes/accelerate_configs/fsdp2.yaml asks)."""
    out = tmp_path / "fsdp"
    env = {**FSDP_ENV, "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}
    arguments = classification_args(review_files, learngene_dir, out, "--per_device_train_batch_size", "4")
    torchrun("text_classification.py", arguments + ["--stop_after_steps", "3"], env=env)
    checkpoint = out / "checkpoints" / "step-3"
    assert any("fsdp" in p.name for p in checkpoint.iterdir())  # sharded by FSDP, not replicated by DDP
    torchrun("text_classification.py", arguments + ["--resume_from_checkpoint", "latest"], env=env)
    report = json.loads((out / "results.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1, 2] and report["processes"] == 2
    for folder in ("best", "last"):  # gathered on all ranks: plain transformers loads every weight
        model, info = transformers.AutoModelForSequenceClassification.from_pretrained(out / folder,
                                                                                       output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(model).__name__ == "BertForSequenceClassification"


def test_fsdp_diffusion_training_saves_the_ema_model_and_resumes(tmp_path):
    from diffusers import DiTTransformer2DModel

    out = tmp_path / "fsdp-dit"
    arguments = TINY_DIT + ["--model_type", "dit", "--layers", "2", "--max_train_steps", "4", "--sample_every", "4",
                            "--checkpointing_steps", "2", "--output_dir", str(out)]
    torchrun("diffusion_pretraining.py", arguments + ["--stop_after_steps", "2"], env=FSDP_ENV)
    assert (out / "checkpoints" / "step-2" / "extra.safetensors").is_file()  # the EMA, gathered whole
    torchrun("diffusion_pretraining.py", arguments + ["--resume_from_checkpoint", "latest"], env=FSDP_ENV)
    report = json.loads((out / "results.json").read_text())
    assert report["steps"] == 4 and report["processes"] == 2 and len(report["heldout_denoising_loss"]) == 1
    model = DiTTransformer2DModel.from_pretrained(out / "model")
    assert all(torch.isfinite(p).all() for p in model.parameters())
