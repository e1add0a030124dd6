"""recipes/morphology_control.py end to end on the real morphology suite, at a few PPO updates."""

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import morphology_control  # noqa: E402

from hf_learngene.morphology import TASKS  # noqa: E402

SMALL_MODEL = ["--hidden_size", "32", "--num_layers", "1", "--num_heads", "2", "--intermediate_size", "64"]
SHORT_PPO = ["--rollout_steps", "16", "--minibatch_size", "128", "--ppo_epochs", "2", "--max_episode_steps", "50",
             "--no_progress_bar"]


def run(output_dir, *extra):
    """A short run; a new controller is small (a --model brings its own sizes)."""
    sizes = [] if "--model" in extra or "--learngene" in extra else SMALL_MODEL
    return morphology_control.main(["--output_dir", str(output_dir), *sizes, *SHORT_PPO, *extra])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("divmorph")
    results = run(folder, "--bodies", "hopper,ant_three_legs", "--tasks", "run_forward,run_backward",
                  "--total_steps", "256")
    return folder, results


def test_training_writes_the_controller_its_learngene_and_results(trained):
    folder, results = trained
    assert results["steps"] == 256 and results["architecture"] == "divmorph"
    assert (folder / "model" / "model.safetensors").exists() and (folder / "learngene" / "learngene.safetensors").exists()
    saved = json.loads((folder / "results.json").read_text())
    assert saved["command"].startswith("python ") and saved["final_mean_return"] is not None
    assert (folder / "metrics.csv").read_text().count("\n") == 1 + 256 // (16 * 4)


def test_transfer_of_the_tailors_leaves_learngenes_and_body_tailors_as_they_were(trained, tmp_path):
    folder, _ = trained
    results = run(tmp_path, "--model", str(folder / "model"), "--transfer", "tailors", "--tasks", "held_out",
                  "--bodies", "hopper,ant_three_legs", "--total_steps", "128")
    assert results["trainable_parameters"] < results["parameters"]
    # the transfer normalised its inputs with the statistics the controller was trained with
    assert torch.equal(load_file(str(folder / "model" / "observation_stats.safetensors"))["token_stats.mean"],
                       load_file(str(tmp_path / "model" / "observation_stats.safetensors"))["token_stats.mean"])
    before, after = weights(folder / "model"), weights(tmp_path / "model")
    from hf_learngene import DivMorphForContinuousControl

    model = DivMorphForContinuousControl.from_pretrained(folder / "model")
    model.freeze_for_task_transfer()
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    kinds = {name: DivMorphForContinuousControl.parameter_kind(name) for name in before}
    # every learngene unit and body tailor is frozen (the value head and log std may learn)
    assert {n for n, k in kinds.items() if k == "morphology"} <= frozen
    assert {n for n, k in kinds.items() if k == "learngene" and n.startswith("encoder.")} <= frozen
    for name in frozen:
        assert torch.equal(before[name], after[name]), name
    changed = [name for name, kind in kinds.items() if kind == "task" and not torch.equal(before[name], after[name])]
    assert changed


def test_a_task_the_controller_never_trained_on_starts_at_the_trained_tasks_mean(trained, tmp_path):
    folder, _ = trained
    saved = json.loads((folder / "model" / "config.json").read_text())
    assert saved["trained_tasks"] == ["run_backward", "run_forward"]
    assert saved["trained_bodies"] == ["ant_three_legs", "hopper"]
    args = morphology_control.parse_args(["--output_dir", str(tmp_path / "out"), "--model", str(folder / "model"),
                                          "--transfer", "tailors", "--tasks", "held_out", "--bodies", "hopper"])
    controller = morphology_control.make_controller(args)
    tasks = controller.gate_network.task_embedding.weight
    trained_rows = [TASKS.index("run_forward"), TASKS.index("run_backward")]
    torch.testing.assert_close(tasks[TASKS.index("stand_tall")], tasks[trained_rows].mean(0))
    # a task it trained on keeps its own row; so does a body it trained on
    before = load_file(str(folder / "model" / "model.safetensors"))
    assert torch.equal(tasks[trained_rows[0]], before["gate_network.task_embedding.weight"][trained_rows[0]])
    assert torch.equal(controller.gate_network.body_embedding.weight, before["gate_network.body_embedding.weight"])


def test_checkpoints_record_what_their_controller_trained_on(trained, tmp_path):
    """A transfer's checkpoint says it trained on the new task, so continuing from it keeps that task's row."""
    folder, _ = trained
    run(tmp_path, "--model", str(folder / "model"), "--transfer", "full", "--tasks", "held_out",
        "--bodies", "hopper", "--total_steps", "32", "--checkpointing_steps", "1")
    checkpoint = sorted((tmp_path / "checkpoints").glob("step-*"))[0] / "model"
    record = json.loads((checkpoint / "config.json").read_text())
    assert record["trained_tasks"] == ["run_backward", "run_forward", "stand_tall"]
    args = morphology_control.parse_args(["--output_dir", str(tmp_path / "again"), "--model", str(checkpoint),
                                          "--transfer", "full", "--tasks", "held_out", "--bodies", "hopper"])
    controller = morphology_control.make_controller(args)
    saved = load_file(str(checkpoint / "model.safetensors"))["gate_network.task_embedding.weight"]
    assert torch.equal(controller.gate_network.task_embedding.weight, saved)


def test_a_model_folder_without_its_observation_statistics_is_refused(trained, tmp_path, capsys):
    folder, _ = trained
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((folder / "model" / name).read_bytes())
    with pytest.raises(SystemExit) as stop:
        morphology_control.main(["--output_dir", str(tmp_path / "out"), "--model", str(bare), "--transfer", "full"])
    assert stop.value.code == 2 and "observation_stats.safetensors" in capsys.readouterr().err
    # a checkpoint's model/ folder: the statistics are in the checkpoint's trainer state
    checkpoint = tmp_path / "checkpoint"
    (checkpoint / "model").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (checkpoint / "model" / name).write_bytes((folder / "model" / name).read_bytes())
    (checkpoint / "trainer_state.safetensors").write_bytes((folder / "model" / "observation_stats.safetensors").read_bytes())
    assert morphology_control.observation_stats_of(checkpoint / "model") == checkpoint / "trainer_state.safetensors"


def test_an_interrupted_run_resumes_exactly(tmp_path):
    common = ["--bodies", "half_cheetah", "--tasks", "run_forward", "--total_steps", "192", "--envs_per_pair", "2",
              "--seed", "1"]
    run(tmp_path / "straight", *common)
    run(tmp_path / "sliced", *common, "--stop_after_steps", "3")
    assert not (tmp_path / "sliced" / "model").exists() and (tmp_path / "sliced" / "checkpoints" / "step-96").exists()
    run(tmp_path / "sliced", *common, "--resume_from_checkpoint", "latest")
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "sliced" / "model")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    stats = "model/observation_stats.safetensors"
    assert (tmp_path / "straight" / stats).read_bytes() == (tmp_path / "sliced" / stats).read_bytes()
    logs = []
    for run_dir in ("straight", "sliced"):
        with open(tmp_path / run_dir / "metrics.csv", newline="") as handle:
            logs.append([{k: v for k, v in row.items() if k != "steps_per_second"} for row in csv.DictReader(handle)])
    assert logs[0] == logs[1] and len(logs[0]) == 192 // (16 * 2)
    straight, sliced = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("straight", "sliced"))
    assert straight["final_mean_return"] == sliced["final_mean_return"]


@pytest.mark.parametrize("argv,named", [
    (["--transfer", "tailors"], "--transfer"),
    (["--bodies", "hopper,spider"], "--bodies"),
    (["--tasks", "fly"], "--tasks"),
    (["--unit_split", "0.5,0.5,0.5"], "--unit_split"),
    (["--total_steps", "0"], "--total_steps"),
    (["--mixed_precision", "bf16"], "--mixed_precision"),
    (["--gamma", "1.5"], "gamma"),
    (["--learning_rate", "inf"], "--learning_rate"),
    (["--sparsity_weight", "-1"], "--sparsity_weight"),
    (["--gate_density", "0"], "--gate_density"),
    (["--gate", "hard"], "--gate"),
    (["--hidden_size", "30", "--num_heads", "4"], "--num_heads 4 must divide --hidden_size 30"),
    (["--model", "/nonexistent", "--transfer", "full"], "--model"),
    (["--learngene", "/nonexistent"], "--learngene"),
    (["--learngene", "{learngene}", "--hidden_size", "64"], "--hidden_size"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_arguments_exit_2_naming_the_option(argv, named, tmp_path, capsys):
    (tmp_path / "learngene").mkdir()
    (tmp_path / "learngene" / "learngene_config.json").write_text("{}")
    argv = [arg.replace("{learngene}", str(tmp_path / "learngene")) for arg in argv]
    with pytest.raises(SystemExit) as stop:
        morphology_control.main(["--output_dir", str(tmp_path / "out"), *argv])
    assert stop.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
