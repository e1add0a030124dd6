"""Every option of ``hf-learngene`` and of every recipe, over a table of bad values per kind (zero,
negative, out of range, wrong type, missing path, an output folder holding a finished run,
conflicting or dependent pairs): each is refused while the arguments are parsed, with exit code 2,
the option named, no traceback and nothing written. Parse only: no model is loaded, nothing trains.
A second table holds values that must still parse (zeros that mean something, Hub ids, data files
as users have them), and the argument lists the benchmarks and scripts pass to the recipes."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest

from conftest import minilm_path

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))

RECIPES = ("audio_classification", "build_from_minilm", "diffusion_pretraining", "imdb_workflow",
           "morphology_control", "question_answering", "text_classification")

# bad values per kind of option
POSITIVE_INT = ["0", "-1", "1.5", "x"]
NON_NEGATIVE_INT = ["-1", "1.5", "x"]
POSITIVE_FLOAT = ["0", "-1", "nan", "inf", "x"]
NON_NEGATIVE_FLOAT = ["-0.1", "inf", "x"]
FRACTION = ["0", "1.5", "-0.1", "x"]  # valid: (0, 1]
UNIT = ["1.5", "-0.1", "x"]  # valid: [0, 1]
SEED = ["-1", "4294967296", "x"]
CHOICE = ["nonsense"]
OUTPUT = ["{file}", "{file}/sub"]  # a file, and a folder that cannot be made under one
BAD_SIZE = ["layers=x", "", "nano", "layers=2,hidden=100,heads=3"]  # syntax, empty, unknown preset, heads ∤ hidden
TOO_LONG = "x" * 300  # a path the system refuses to look at (file name too long)

# (script, the arguments before the bad ones: a run that parses, or None for a row that gives them all)
BASES = {
    "text_classification": ["--train_file", "{csv}", "--validation_file", "{csv}", "--text_column_names", "review",
                            "--label_column_name", "sentiment", "--learngene", "{learngene}", "--size", "mini",
                            "--output_dir", "{out}"],
    "question_answering": ["--train_file", "{squad}", "--validation_file", "{squad}", "--learngene", "{learngene}",
                           "--size", "mini", "--output_dir", "{out}"],
    "audio_classification": ["--dataset_name", "{images}", "--output_dir", "{out}"],  # a folder: parse reads none
    "diffusion_pretraining": ["--output_dir", "{out}"],
    "morphology_control": ["--output_dir", "{out}"],
    "build_from_minilm": ["--output_dir", "{out}"],
    "imdb_workflow": ["--output_dir", "{out}"],
    "cli extract": ["extract", "{model}", "--out", "{out}"],
    "cli build": ["build", "{learngene}", "--out", "{out}"],
    "cli inspect": ["inspect", "{learngene}"],
}


def values(option: str, bad: list[str], named: str | None = None) -> list[tuple[list[str], str]]:
    """One row per bad value of ``option``."""
    return [([option, value], named or option) for value in bad]


RUN = [
    *values("--seed", SEED),
    *values("--mixed_precision", CHOICE),
    *values("--checkpointing_steps", NON_NEGATIVE_INT),
    *values("--stop_after_steps", NON_NEGATIVE_INT),
    *values("--report_to", CHOICE),
    *values("--resume_from_checkpoint", ["{missing}", "{file}", "{empty}", "latest"]),
    *values("--output_dir", [*OUTPUT, "{done}"]),
    (["--resume_from_checkpoint", "latest", "--overwrite_output_dir", "--output_dir", "{done}"],
     "--overwrite_output_dir"),
]
TRAINING = RUN + [
    *values("--num_train_epochs", POSITIVE_INT),
    *values("--per_device_train_batch_size", POSITIVE_INT),
    *values("--per_device_eval_batch_size", POSITIVE_INT),
    *values("--learning_rate", POSITIVE_FLOAT),
    *values("--weight_decay", NON_NEGATIVE_FLOAT),
    *values("--lr_scheduler_type", CHOICE),
    *values("--num_warmup_steps", NON_NEGATIVE_INT),
]
TEXT_DATA = ["--train_file", "{csv}", "--validation_file", "{csv}", "--text_column_names", "review",
             "--label_column_name", "sentiment"]
SQUAD_DATA = ["--train_file", "{squad}", "--validation_file", "{squad}"]
OUT = ["--output_dir", "{out}"]


def model_rows(data: list[str]) -> list[tuple[list[str], str, str | None]]:
    """The model options of the text recipes; ``data`` is the recipe's data arguments."""
    return [
        *[(row, named, "base") for row, named in [
            *values("--learngene", ["{missing}", "{file}", "{empty}"]),
            *values("--size", BAD_SIZE),
            *values("--init", CHOICE),
            *values("--revision", [""]),
            *values("--tokenizer_name", ["{missing}", "{file}"]),
            (["--model_name_or_path", "{model}"], "--model_name_or_path"),  # both sources
        ]],
        (data + ["--model_name_or_path", "{missing}"] + OUT, "--model_name_or_path", None),
        (data + ["--model_name_or_path", "{model}", "--size", "mini"] + OUT, "--size", None),
        (data + ["--model_name_or_path", "{model}", "--init", "random"] + OUT, "--init", None),
        (data + ["--learngene", "{learngene}"] + OUT, "--size", None),  # a learngene needs a size
        (data + ["--size", "mini"] + OUT, "--learngene", None),  # no model at all
    ]


TABLE: dict[str, list[tuple[list[str], str, str | None]]] = {
    "text_classification": [
        *[(row, named, "base") for row, named in [
            *TRAINING,
            *values("--train_file", ["{missing}", "{empty}", "{file}", TOO_LONG, "{latin1}"]),
            *values("--validation_file", ["{missing}", "{jsonl}"]),
            *values("--text_column_names", ["a,b,c", "", "sentence"]),
            *values("--label_column_name", ["", "stars"]),
            *values("--task_type", CHOICE),
            *values("--max_train_samples", POSITIVE_INT),
            *values("--max_eval_samples", POSITIVE_INT),
            *values("--max_length", POSITIVE_INT),
            *values("--selection_fraction", ["1", "-0.1", "nan", "x"]),
            (["--task_name", "mrpc"], "--task_name"),  # with --train_file
        ]],
        *model_rows(TEXT_DATA),
        (["--task_name", "sst5", "--learngene", "{learngene}", "--size", "mini"] + OUT, "--task_name", None),
        (["--task_name", "mrpc", "--label_column_name", "y", "--learngene", "{learngene}", "--size", "mini"] + OUT,
         "--label_column_name", None),
        (["--task_name", "stsb", "--task_type", "regression", "--learngene", "{learngene}", "--size", "mini"] + OUT,
         "--task_type", None),  # a GLUE task has its own
        (["--train_file", "{csv}", "--learngene", "{learngene}", "--size", "mini"] + OUT, "--validation_file", None),
    ],
    "question_answering": [
        *[(row, named, "base") for row, named in [
            *TRAINING,
            *values("--train_file", ["{missing}", "{csv}", TOO_LONG]),
            *values("--validation_file", ["{missing}", "{file}", "{empty}"]),
            *values("--max_seq_length", POSITIVE_INT),
            *values("--doc_stride", [*NON_NEGATIVE_INT, "200"]),
            *values("--n_best_size", POSITIVE_INT),
            *values("--max_answer_length", POSITIVE_INT),
            *values("--null_score_diff_threshold", ["nan", "x"]),
            *values("--max_train_samples", POSITIVE_INT),
            *values("--max_eval_samples", POSITIVE_INT),
        ]],
        *model_rows(SQUAD_DATA),
        (["--dataset_name", "squad3", "--learngene", "{learngene}", "--size", "mini"] + OUT, "--dataset_name", None),
        (["--dataset_name", "squad", "--validation_file", "{squad}", "--learngene", "{learngene}", "--size", "mini"]
         + OUT, "--validation_file", None),
        (["--train_file", "{squad}", "--learngene", "{learngene}", "--size", "mini"] + OUT, "--validation_file", None),
    ],
    "audio_classification": [
        *[(row, named, "base") for row, named in [
            *TRAINING,
            *values("--dataset_name", ["{missing}", "{file}"]),
            *values("--folds", ["1", *POSITIVE_INT]),
            *values("--only_fold", ["-1", "5", "x"]),
            (["--only_fold", "0", "--output_dir", "{fold0_done}"], "--output_dir"),  # that fold ran before
            (["--output_dir", "{fold0_done}"], "--output_dir"),  # all folds: fold-0 ran before
            (["--resume_from_checkpoint", "{checkpoint}"], "--resume_from_checkpoint"),  # folds resume from latest
            *values("--feature_type", CHOICE),
            *values("--model_name_or_path", ["{missing}", "{empty}"]),
            *values("--learngene", ["{missing}", "{file}"]),
            *values("--size", ["layers=x", ""]),
            *values("--init", CHOICE),
            *values("--encoder_channels", ["0", "-1", "x"]),
            (["--learngene", "{pipmn}"], "--size"),
            (["--learngene", "{pipmn}", "--size", "nano"], "--size"),
            (["--size", "small"], "--size"),
            (["--init", "random"], "--init"),
            (["--learngene", "{pipmn}", "--size", "small", "--encoder_channels", "8"], "--encoder_channels"),
            (["--learngene", "{pipmn}", "--model_name_or_path", "{model}"], "--model_name_or_path"),
        ]],
    ],
    "diffusion_pretraining": [
        *[(row, named, "base") for row, named in [
            *RUN,
            *values("--dataset_name", ["{missing}", "{file}"]),
            *values("--image_size", POSITIVE_INT),
            *values("--channels", ["2", "x"]),
            *values("--image_column_name", ["", "img"]),
            *values("--label_column_name", ["", "class"]),
            *values("--max_train_samples", POSITIVE_INT),
            *values("--max_eval_samples", POSITIVE_INT),
            *values("--model_type", CHOICE),
            *values("--learngene", ["{missing}", "{file}"]),
            *values("--model_name_or_path", ["{missing}", "{empty}"]),
            *values("--sigma_init", CHOICE),
            *values("--sigma_only_steps", NON_NEGATIVE_INT),
            *values("--sigma_only_train", CHOICE),
            *values("--layers", POSITIVE_INT),
            *values("--heads", POSITIVE_INT),
            *values("--head_dim", POSITIVE_INT),
            *values("--patch_size", [*POSITIVE_INT, "5"]),
            *values("--rank", POSITIVE_INT),
            *values("--max_train_steps", POSITIVE_INT),
            *values("--per_device_train_batch_size", POSITIVE_INT),
            *values("--learning_rate", POSITIVE_FLOAT),
            *values("--ema_decay", ["1", "-0.1", "x"]),
            *values("--sample_every", NON_NEGATIVE_INT),
            *values("--sampling_steps", ["0", "1001", "x"]),
            *values("--guidance_scale", ["0.5", "nan", "x"]),
            (["--image_size", "32"], "--image_size"),  # fashion-mnist is 28x28
            (["--dataset_name", "{images}", "--image_column_name", "picture"], "--image_column_name"),
            (["--dataset_name", "{images}", "--label_column_name", "kind"], "--label_column_name"),
            (["--dataset_name", "{meta_images}"], "--label_column_name"),  # its metadata has no 'label'
            (["--dataset_name", "{meta_images}", "--label_column_name", "nope"], "--label_column_name"),

            (["--learngene", "{fine}", "--model_name_or_path", "{dense_dit}"], "--model_name_or_path"),
            (["--learngene", "{fine}", "--model_type", "dit"], "--model_type"),
            (["--sigma_init", "linear"], "--sigma_init"),  # without a learngene
            (["--sigma_only_steps", "10", "--model_type", "dit"], "--sigma_only_steps"),
            (["--sigma_only_steps", "10", "--model_name_or_path", "{dense_dit}"], "--sigma_only_steps"),
            (["--sigma_only_train", "sigma_and_unshared"], "--sigma_only_train"),  # without σ-only steps
            (["--rank", "4", "--model_type", "dit"], "--rank"),
            (["--rank", "4", "--learngene", "{fine}"], "--rank"),
        ]],
    ],
    "morphology_control": [
        *[(row, named, "base") for row, named in [
            *RUN,
            (["--mixed_precision", "bf16"], "--mixed_precision"),
            *values("--bodies", ["spider", "hopper,spider", ""]),
            *values("--tasks", ["fly", ""]),
            *values("--envs_per_pair", POSITIVE_INT),
            *values("--max_episode_steps", POSITIVE_INT),
            *values("--model", ["{missing}", "{empty}"]),
            *values("--learngene", ["{missing}", "{empty}"]),
            *values("--transfer", CHOICE),
            *values("--architecture", CHOICE),
            *values("--hidden_size", POSITIVE_INT),
            *values("--num_layers", POSITIVE_INT),
            *values("--num_heads", POSITIVE_INT),
            *values("--intermediate_size", POSITIVE_INT),
            *values("--unit_split", ["0.5,0.5,0.5", "0.5,0.5", "x"]),
            (["--unit_split=-0.5,1,0.5"], "--unit_split"),  # a value starting with '-' goes after '='
            (["--unit_split", "-0.5,1,0.5"], "--unit_split"),  # argparse takes it for an option: still named
            *values("--gate", CHOICE),
            *values("--gate_density", FRACTION),
            *values("--sparsity_weight", NON_NEGATIVE_FLOAT),
            *values("--total_steps", POSITIVE_INT),
            *values("--rollout_steps", POSITIVE_INT),
            *values("--ppo_epochs", POSITIVE_INT),
            *values("--minibatch_size", POSITIVE_INT),
            *values("--learning_rate", POSITIVE_FLOAT),
            *values("--gamma", UNIT),
            *values("--gae_lambda", UNIT),
            *values("--clip_range", ["0", "1", "x"]),
            *values("--entropy_coef", NON_NEGATIVE_FLOAT),
            *values("--target_kl", POSITIVE_FLOAT),
            (["--transfer", "tailors"], "--transfer"),  # without --model
            (["--model", "{controller}"], "--transfer"),  # without --transfer
            (["--model", "{controller}", "--learngene", "{divmorph}"], "--learngene"),
            (["--model", "{controller}", "--transfer", "full", "--hidden_size", "64"], "--hidden_size"),
            (["--learngene", "{divmorph}", "--gate", "top_k"], "--gate"),
            (["--model", "{baseline}", "--transfer", "tailors"], "--transfer"),
            (["--gate_density", "0.2"], "--gate_density"),  # without --gate top_k
            (["--hidden_size", "30", "--num_heads", "4"], "--num_heads 4 must divide --hidden_size 30"),
        ]],
    ],
    "imdb_workflow": [
        *[(row, named, "base") for row, named in [
            *values("--method", ["random", *CHOICE]),
            *values("--size", BAD_SIZE),
            *values("--num_train_epochs", POSITIVE_INT),
            *values("--max_train_samples", ["1", *POSITIVE_INT]),
            *values("--max_eval_samples", POSITIVE_INT),
            *values("--seed", SEED),
            *values("--output_dir", [*OUTPUT, "{imdb_done}"]),
            *values("--wavelet", ["bior1.3", *CHOICE]),
            *values("--levels", NON_NEGATIVE_INT),
            (["--max_train_samples", "1000000"], "--max_train_samples"),  # more reviews than there are
            (["--keep", "0.5"], "--keep"),  # an option of front, with --method bot
            (["--method", "front", "--keep", "0"], "--keep"),
            (["--method", "front", "--keep", "x"], "--keep"),
        ]],
    ],
    "build_from_minilm": [
        *[(row, named, "base") for row, named in [
            *values("--output_dir", [*OUTPUT, "{minilm_done}"]),
            *values("--smaller", BAD_SIZE),
            *values("--larger", ["nano", "layers=x"]),
        ]],
    ],
    "cli extract": [
        (["extract", "{missing}", "--out", "{out}"], "source", None),
        (["extract", "{file}", "--out", "{out}"], "source", None),
        (["extract", "{empty}", "--out", "{out}"], "source", None),
        (["extract", "{model}", "--out", "{model}"], "--out", None),  # would replace its own source
        (["extract", "{model}", "--out", "{model}", "--overwrite"], "--out", None),  # even when asked to
        (["extract", TOO_LONG, "--out", "{out}"], "source", None),
        *[(row, named, "base") for row, named in [
            *values("--method", CHOICE),
            *values("--out", [*OUTPUT, "{cli_done}", "{clutter}", "{images}", TOO_LONG]),
            *values("--rescaling", CHOICE),
            *values("--max-shard-size", ["0", "x", "5XB"]),
            *values("--storage-dtype", CHOICE),
            *values("--revision", [""]),
            *values("--keep", ["0", "2", "x"]),
            *values("--levels", NON_NEGATIVE_INT),
            *values("--layers", CHOICE),
            *values("--snr-db", ["nan", "x"]),
            *values("--seed", SEED),
            *values("--order", CHOICE),
            (["--method", "bot", "--wavelet", "bior1.3"], "--wavelet"),
            (["--method", "bot", "--wavelet", "nonsense"], "--wavelet"),
            (["--wavelet", "haar"], "--wavelet"),  # an option of bot, with --method front
            (["--method", "stack", "--keep", "0.5"], "--keep"),
        ]],
    ],
    "cli build": [
        (["build", "{missing}", "--out", "{out}"], "learngene", None),
        (["build", "{file}", "--out", "{out}"], "learngene", None),
        (["build", "{empty}", "--out", "{out}"], "learngene", None),
        (["build", "{learngene}", "--out", "{learngene}"], "--out", None),
        (["build", "{learngene}", "--out", "{learngene}", "--overwrite"], "--out", None),  # even when asked to
        *[(row, named, "base") for row, named in [
            *values("--size", [*BAD_SIZE, '{"layers": ']),
            *values("--task", CHOICE),
            *values("--num-labels", POSITIVE_INT),
            *values("--dtype", CHOICE),
            *values("--device", ["nonsense", "cuda:99"]),
            *values("--max-shard-size", ["0", "x"]),
            *values("--out", [*OUTPUT, "{cli_done}", "{clutter}"]),
            *values("--revision", [""]),
            (["--num-labels", "2"], "--num-labels"),  # with --task base
        ]],
    ],
    "cli inspect": [
        (["inspect", "{missing}"], "learngene", None),
        (["inspect", "{file}"], "learngene", None),
        (["inspect", "{empty}"], "learngene", None),
        (["inspect", TOO_LONG], "learngene", None),
        *[(row, named, "base") for row, named in [
            *values("--revision", [""]),
            *values("--size", ["nano", "layers=x"]),
            *values("--task", CHOICE),
            *values("--num-labels", POSITIVE_INT),
            *values("--dtype", CHOICE),
            (["--task", "causal-lm"], "--task"),  # without --size
            (["--dtype", "float16"], "--dtype"),  # without --size
        ]],
    ],
}

CASES = [(script, row if base is None else BASES[script] + row, named)
         for script, rows in TABLE.items() for row, named, base in rows]


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Small stand-ins for what the options point at: config files only, as parsing reads no weights."""
    root = tmp_path_factory.mktemp("options")
    minilm_config = json.loads((minilm_path() / "config.json").read_text())
    from hf_learngene import PIPMNConfig

    write_json(root / "learngene" / "config.json", {"model_type": "learngene", "family": "bert",
                                                     "source_config": minilm_config})
    write_json(root / "pipmn" / "config.json", {"model_type": "learngene", "family": "pipmn",
                                                  "source_config": PIPMNConfig().to_dict()})
    write_json(root / "fine" / "config.json", {"_class_name": "FINELearngene"})
    write_json(root / "dense-dit" / "config.json", {"_class_name": "DiTTransformer2DModel"})
    write_json(root / "controller" / "config.json", {"factorized": True})
    write_json(root / "baseline" / "config.json", {"factorized": False})
    from safetensors.torch import save_file

    from hf_learngene.morphology import TOKEN_DIM
    from hf_learngene.morphology.ppo import RunningMeanStd

    for controller in ("controller", "baseline"):  # the input statistics a saved controller keeps beside it
        save_file(RunningMeanStd(TOKEN_DIM).state("token_stats"), str(root / controller / "observation_stats.safetensors"))
    write_json(root / "divmorph" / "learngene_config.json", {})
    (root / "train.csv").write_text("review,sentiment\ngreat,positive\n")
    (root / "train.jsonl").write_text('{"review": "great", "sentiment": "positive"}\n')
    write_json(root / "squad.json", {"data": []})
    (root / "a-file.txt").write_text("not a folder\n")
    (root / "empty").mkdir()
    (root / "images" / "train" / "circle").mkdir(parents=True)
    write_json(root / "done" / "results.json", {})  # a finished run of a recipe
    write_json(root / "imdb-done" / "workflow.json", {})
    (root / "minilm-done" / "learngene-front").mkdir(parents=True)
    write_json(root / "cli-done" / "config.json", {})
    write_json(root / "nest" / "model" / "config.json", minilm_config)  # a source inside a folder
    (root / "clutter").mkdir()
    (root / "clutter" / "notes.txt").write_text("not a saved model, still not to be replaced\n")
    write_json(root / "checkpoint" / "recipe_state.json", {})  # a checkpoint folder of a recipe
    (root / "meta-images" / "train").mkdir(parents=True)  # an imagefolder labelled by a metadata file
    (root / "meta-images" / "train" / "metadata.jsonl").write_text(
        '{"file_name": "0.png", "kind": "circle", "note": "x"}\n')
    (root / "meta-csv-images").mkdir()
    (root / "meta-csv-images" / "metadata.csv").write_text("\ufefffile_name,shape\n0.png,circle\n")
    (root / "bom.csv").write_text("\ufeffreview,sentiment\ngreat,positive\n", encoding="utf-8")  # as Excel writes it
    (root / "latin1.csv").write_bytes("review,sentiment\ncafé,positive\n".encode("latin-1"))
    (root / "squad.txt").write_text(json.dumps({"data": []}))  # SQuAD JSON under another suffix
    write_json(root / "fold0-done" / "fold-0" / "results.json", {})  # an audio run whose fold 0 finished
    write_json(root / "fold0-done" / "results.json", {})
    (root / "fold-started" / "fold-2").mkdir(parents=True)  # an audio fold that died before its first checkpoint
    places = {"learngene": "learngene", "pipmn": "pipmn", "fine": "fine", "dense_dit": "dense-dit",
              "controller": "controller", "baseline": "baseline", "divmorph": "divmorph", "csv": "train.csv",
              "jsonl": "train.jsonl", "squad": "squad.json", "file": "a-file.txt", "empty": "empty",
              "images": "images", "done": "done", "imdb_done": "imdb-done", "minilm_done": "minilm-done",
              "cli_done": "cli-done", "missing": "no/such/folder", "out": "out", "nest": "nest",
              "nest_model": "nest/model", "clutter": "clutter", "checkpoint": "checkpoint",
              "meta_images": "meta-images", "meta_csv_images": "meta-csv-images", "bom_csv": "bom.csv",
              "latin1": "latin1.csv", "squad_txt": "squad.txt", "fold0_done": "fold0-done",
              "fold_started": "fold-started"}
    return {"root": str(root), "model": str(minilm_path()), **{key: str(root / path) for key, path in places.items()}}


def filled(argv: list[str], world: dict[str, str]) -> list[str]:
    for key, path in world.items():
        argv = [arg.replace("{" + key + "}", path) for arg in argv]
    return argv


def parse(script: str, argv: list[str]) -> argparse.Namespace:
    """The script's arguments as its parse function reads them (never its work)."""
    if script.startswith("cli"):
        from hf_learngene import cli

        return cli.parse_args(argv)
    return importlib.import_module(script).parse_args(argv)


def snapshot(root: str) -> set[Path]:
    return set(Path(root).rglob("*"))


@pytest.mark.parametrize("script,argv,named", CASES, ids=[f"{s}:{' '.join(a[-4:])}" for s, a, _ in CASES])
def test_a_bad_value_exits_2_naming_the_option(world, script, argv, named, capsys):
    before = snapshot(world["root"])
    with pytest.raises(SystemExit) as stop:
        parse(script, filled(argv, world))
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err and ": error: " in err
    assert named in err.split(": error: ", 1)[1], err  # in the message, not just in the usage line above it
    assert snapshot(world["root"]) == before  # nothing written, the output folder not even made


@pytest.mark.parametrize("script", list(BASES))
def test_the_base_arguments_parse(world, script):
    """Each row's failure is its bad value's: the arguments it adds to parse as they are."""
    before = snapshot(world["root"])
    parse(script, filled(BASES[script], world))
    assert snapshot(world["root"]) == before


def parsers(script: str) -> list[argparse.ArgumentParser]:
    """The parsers a script builds (for the CLI, one per command), caught as parse_args is called."""
    if script == "cli":
        from hf_learngene import cli

        commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        return list(commands.choices.values())
    caught = []

    def catch(self, *args, **kwargs):
        caught.append(self)
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(SystemExit):
            importlib.import_module(script).parse_args([])
    return caught


@pytest.mark.parametrize("script", [*RECIPES, "cli"])
def test_every_option_states_its_valid_range(script):
    """An option taking a value has choices or a checked type whose range its help states."""
    from hf_learngene.cli_types import ArgType

    for parser in parsers(script):
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._SubParsersAction):
                continue  # a flag, --help
            name = "/".join(action.option_strings) or action.dest
            assert action.choices is not None or isinstance(action.type, ArgType), f"{script} {name}: unchecked"
            if isinstance(action.type, ArgType):
                assert action.type.valid in action.help, f"{script} {name}: range not in its help"


def test_sample_every_zero_means_never(world):
    """The value that crashed the diffusion recipe mid-run now parses, documented as 'never'."""
    args = parse("diffusion_pretraining", filled(["--sample_every", "0", "--checkpointing_steps", "0", *OUT], world))
    assert args.sample_every == 0 and args.checkpointing_steps == 0


# values that must still parse: (script, arguments after the script's base ones, or None for a row giving them all)
VALID: dict[str, list[tuple[list[str], str | None]]] = {
    "text_classification": [
        *[(row, "base") for row in [
            ["--num_warmup_steps", "0"],
            ["--weight_decay", "0"],
            ["--selection_fraction", "0"],  # 0: report the last epoch
            ["--task_type", "regression"],  # checked against the labels once the files are read
            ["--task_type", "classification"],
            ["--stop_after_steps", "0"],
            ["--checkpointing_steps", "0"],
            ["--seed", "0"],
            ["--seed", "4294967295"],
            ["--tokenizer_name", "bert-base-uncased"],  # Hub ids: name and owner/name
            ["--tokenizer_name", "owner/name"],
            ["--train_file", "{bom_csv}", "--validation_file", "{bom_csv}"],  # a CSV with a byte-order mark
            ["--init", "random"],
        ]],
        (TEXT_DATA + ["--learngene", "some-learngene", "--size", "mini"] + OUT, None),
        (TEXT_DATA + ["--learngene", "owner/name", "--size", "layers=2,hidden=64,heads=2"] + OUT, None),
        (TEXT_DATA + ["--model_name_or_path", "bert-base-uncased"] + OUT, None),
        (TEXT_DATA + ["--model_name_or_path", "owner/name", "--revision", "main"] + OUT, None),
        (["--task_name", "MRPC", "--learngene", "{learngene}", "--size", "mini"] + OUT, None),
    ],
    "question_answering": [
        *[(row, "base") for row in [
            ["--doc_stride", "0"],
            ["--doc_stride", "127"],  # the largest below half of --max_seq_length 256
            ["--num_warmup_steps", "0"],
            ["--null_score_diff_threshold", "-1.5"],
            ["--train_file", "{squad_txt}", "--validation_file", "{squad_txt}"],  # the content says SQuAD JSON
            ["--train_file", "{jsonl}", "--validation_file", "{jsonl}"],
        ]],
        (["--dataset_name", "squad_v2", "--learngene", "{learngene}", "--size", "mini"] + OUT, None),
    ],
    "audio_classification": [
        *[(row, "base") for row in [
            ["--num_warmup_steps", "0"],
            ["--weight_decay", "0"],
            ["--dataset_name", "owner/name"],
            ["--only_fold", "1", "--output_dir", "{fold0_done}"],  # another fold finished before
            ["--resume_from_checkpoint", "latest", "--output_dir", "{fold0_done}"],
            ["--resume_from_checkpoint", "latest", "--output_dir", "{fold_started}"],  # a fold with no checkpoint
            ["--only_fold", "1", "--resume_from_checkpoint", "latest", "--output_dir", "{fold_started}"],
            ["--overwrite_output_dir", "--output_dir", "{fold0_done}"],
            ["--learngene", "{pipmn}", "--size", "small"],
            ["--learngene", "owner/name", "--size", "channels=200,400"],
            ["--model_name_or_path", "owner/name"],
            ["--encoder_channels", "8", "16"],
        ]],
    ],
    "diffusion_pretraining": [
        *[(row, "base") for row in [
            ["--sample_every", "0", "--checkpointing_steps", "0"],
            ["--sigma_only_steps", "0", "--model_type", "dit"],
            ["--stop_after_steps", "0"],
            ["--ema_decay", "0"],
            ["--guidance_scale", "1"],
            ["--rank", "8"],  # a new FINE model
            ["--dataset_name", "Fashion-MNIST"],
            ["--dataset_name", "{images}"],
            ["--dataset_name", "{meta_images}", "--label_column_name", "kind"],  # labelled by a metadata file
            ["--dataset_name", "{meta_csv_images}", "--label_column_name", "shape"],
            ["--dataset_name", "owner/name", "--image_column_name", "img", "--label_column_name", "class"],
            ["--learngene", "owner/name"],
            ["--learngene", "{fine}", "--sigma_init", "linear", "--sigma_only_steps", "5",
             "--sigma_only_train", "sigma_and_unshared"],
            ["--model_name_or_path", "owner/name", "--sigma_only_steps", "5"],  # on the Hub: taken to be FINE
            ["--model_name_or_path", "{dense_dit}", "--model_type", "dit"],
        ]],
    ],
    "morphology_control": [
        *[(row, "base") for row in [
            ["--gamma", "0"],
            ["--gamma", "1"],
            ["--gae_lambda", "0"],
            ["--entropy_coef", "0"],
            ["--sparsity_weight", "0"],
            ["--stop_after_steps", "0"],
            ["--checkpointing_steps", "0"],
            ["--gate", "top_k", "--gate_density", "1"],
            ["--hidden_size", "32", "--num_heads", "4"],
            ["--model", "{controller}", "--transfer", "full"],
            ["--learngene", "{divmorph}"],
        ]],
    ],
    "imdb_workflow": [
        *[(row, "base") for row in [
            ["--levels", "0"],
            ["--method", "front", "--keep", "1"],
            ["--seed", "0"],
            ["--max_train_samples", "2"],
            ["--output_dir", "{imdb_done}", "--overwrite_output_dir"],
        ]],
    ],
    "build_from_minilm": [
        (["--smaller", "tiny", "--larger", "large"], "base"),
        (["--output_dir", "{minilm_done}", "--overwrite_output_dir"], "base"),
    ],
    "cli extract": [
        (["extract", "gpt2", "--out", "gpt2"], None),  # a Hub id with no local folder of that name
        (["extract", "owner/name", "--out", "{out}", "--revision", "main"], None),
        (["extract", "{model}", "--out", "{empty}"], None),  # an empty folder is replaced without --overwrite
        (["extract", "{model}", "--out", "{cli_done}", "--overwrite"], None),
        (["extract", "{model}", "--out", "{clutter}", "--overwrite"], None),
        (["extract", "{nest_model}", "--out", "{nest_model}/learngene"], None),  # inside the source is fine
        (["--method", "bot", "--levels", "0"], "base"),
        (["--method", "bot", "--wavelet", "db2"], "base"),
    ],
    "cli build": [
        (["build", "owner/name", "--out", "{out}"], None),
        (["build", "my-learngene", "--out", "my-learngene"], None),
        (["--size", "mini", "--task", "sequence-classification", "--num-labels", "2"], "base"),
    ],
    "cli inspect": [
        (["inspect", "owner/name"], None),
        (["inspect", "some-learngene", "--revision", "main"], None),
        (["--size", "mini", "--task", "causal-lm", "--dtype", "bfloat16"], "base"),
    ],
}

VALID_CASES = [(script, row if base is None else BASES[script] + row)
               for script, rows in VALID.items() for row, base in rows]


@pytest.mark.parametrize("script,argv", VALID_CASES, ids=[f"{s}:{' '.join(a[-4:])}" for s, a in VALID_CASES])
def test_a_valid_value_parses(world, script, argv, monkeypatch):
    """Zeros that mean something, Hub ids, data as users have it: accepted, nothing written. Run
    from the world's folder, so that a relative --out such as `gpt2` lies there."""
    monkeypatch.chdir(world["root"])
    before = snapshot(world["root"])
    parse(script, filled(argv, world))
    assert snapshot(world["root"]) == before


def test_paths_come_back_with_the_home_folder_expanded(world, monkeypatch):
    from hf_learngene.cli_types import dataset, existing_file, existing_folder, folder_or_hub_repo, output_folder

    monkeypatch.setenv("HOME", world["root"])
    root = world["root"]
    assert existing_file()("~/train.csv") == f"{root}/train.csv"
    assert existing_folder()("~/empty") == f"{root}/empty"
    assert folder_or_hub_repo("config.json")("~/learngene") == f"{root}/learngene"
    assert folder_or_hub_repo("config.json")("owner/name") == "owner/name"
    assert dataset(["drumkits"], "audiofolder")("~/images") == f"{root}/images"
    assert output_folder("~/new/run") == f"{root}/new/run"
    args = parse("text_classification", filled(["--train_file", "~/train.csv", "--validation_file", "~/train.csv",
                                                "--text_column_names", "review", "--label_column_name", "sentiment",
                                                "--learngene", "~/learngene", "--size", "mini", "--output_dir",
                                                "~/out"], world))
    assert (args.train_file, args.learngene, args.output_dir) == (f"{root}/train.csv", f"{root}/learngene",
                                                                   f"{root}/out")


def test_a_dataset_name_comes_back_as_the_recipe_spells_it(world):
    from hf_learngene.cli_types import dataset

    assert dataset(["fashion-mnist"], "imagefolder")("Fashion-MNIST") == "fashion-mnist"
    assert parse("diffusion_pretraining", filled(["--dataset_name", "FASHION-mnist", *OUT], world)).dataset_name \
        == "fashion-mnist"
    assert parse("audio_classification", filled(["--dataset_name", "DrumKits", *OUT], world)).dataset_name \
        == "drumkits"


MESSAGES = [  # (script, arguments, what the message says, what it must not say)
    ("text_classification", TEXT_DATA + ["--learngene", "{learngene}"] + OUT,
     "one of its presets (tiny, mini, small, medium, base, large)", None),
    ("audio_classification", ["--learngene", "{pipmn}"] + OUT, "one of its presets (tiny, small, paper, large)",
     "mini"),
    ("audio_classification", ["--learngene", "owner/name"] + OUT, "a preset of its family", "mini"),
    ("question_answering", SQUAD_DATA + ["--doc_stride", "200", "--learngene", "{learngene}", "--size", "mini"] + OUT,
     "--doc_stride 200 must be below 128, half of --max_seq_length 256", None),
    ("text_classification", ["--train_file", "{csv}", "--validation_file", "{jsonl}", "--text_column_names",
                             "review", "--label_column_name", "sentiment", "--learngene", "{learngene}",
                             "--size", "mini"] + OUT,
     "--train_file is csv, --validation_file is json", "{"),
    ("text_classification", ["--train_file", "{latin1}", "--validation_file", "{latin1}", "--text_column_names",
                             "review", "--label_column_name", "sentiment", "--learngene", "{learngene}",
                             "--size", "mini"] + OUT, "is not UTF-8 text", "Traceback"),
    ("cli extract", ["extract", "{model}", "--out", "{model}", "--overwrite"], "is the folder read from", None),
    ("cli extract", ["extract", "{model}", "--out", "{clutter}"], "is not empty (notes.txt)", None),
    ("cli extract", ["extract", TOO_LONG, "--out", "{out}"], "File name too long", "Traceback"),
    ("audio_classification", ["--resume_from_checkpoint", "{checkpoint}"] + OUT, "not from a folder", None),
    ("diffusion_pretraining", ["--dataset_name", "{meta_images}"] + OUT,
     "--label_column_name label: the imagefolder", None),
]


@pytest.mark.parametrize("script,argv,says,not_says", MESSAGES, ids=[m[2][:40] for m in MESSAGES])
def test_messages_say_what_is_valid(world, script, argv, says, not_says, capsys):
    with pytest.raises(SystemExit):
        parse(script, filled(argv, world))
    message = capsys.readouterr().err.split(": error: ", 1)[1]
    assert says in message, message
    assert not_says is None or not_says not in message, message


def test_diffusion_checkpointing_help_gives_its_default_and_no_epochs():
    (parser,) = parsers("diffusion_pretraining")
    (action,) = [a for a in parser._actions if "--checkpointing_steps" in a.option_strings]
    assert action.default == 1000
    assert "default 1000" in action.help and "only at the end" in action.help and "epoch" not in action.help, action.help


def test_the_argument_lists_the_benchmarks_and_scripts_pass_to_the_recipes_parse(world, tmp_path, monkeypatch):
    """benchmarks/fine_variable_depth.py and divmorph.py, recipes/imdb_workflow.py (which runs
    text_classification) and scripts/main.sh (imdb_workflow with no arguments) as they call them."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import fine_variable_depth as fine_bench

    work = tmp_path / "work"
    write_json(work / "source-fine" / "learngene" / "config.json", {"_class_name": "FINELearngene"})
    starts = {name: write_json(tmp_path / name / "config.json", {"_class_name": "DiTTransformer2DModel"}).parent
              for name in ("svd", "front")}
    argvs = []
    for settings in (fine_bench.Settings(), fine_bench.QUICK):
        argvs += [fine_bench.source_arguments(settings, kind, work) for kind in ("fine", "dit")]
        for layers in settings.targets:
            argvs += [argv for _, _, argv in fine_bench.target_runs(settings, work, layers, starts["svd"],
                                                                     starts["front"]).values()]
    for argv in argvs:
        parse("diffusion_pretraining", argv)

    divmorph_bench = importlib.import_module("divmorph")
    model, ppo = divmorph_bench.MODEL, divmorph_bench.PPO  # the run lists of its main(), as it writes them
    episode, out = ["--max_episode_steps", "1000"], ["--output_dir", str(work / "run")]
    for argv in ([*model, *ppo, *episode, "--total_steps", "400000"],
                 [*model[:8], "--architecture", "baseline", *ppo, *episode, "--total_steps", "400000"],
                 ["--model", world["controller"], "--transfer", "tailors", *ppo, "--tasks", "held_out", *episode,
                  "--checkpointing_steps", "3", "--seed", "1", "--learning_rate", "0.001"],
                 ["--model", world["baseline"], "--transfer", "full", *ppo, "--tasks", "held_out", *episode,
                  "--checkpointing_steps", "3", "--seed", "1", "--learning_rate", "0.0003"],
                 [*model, *ppo, "--tasks", "held_out", *episode, "--total_steps", "60000"]):
        parse("morphology_control", [*out, *argv])

    import imdb_workflow

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.csv", "validation.csv"):
        (data / name).write_text("text,label\ngreat,positive\n")
    monkeypatch.chdir(tmp_path)  # scripts/main.sh runs imdb_workflow with no arguments: --output_dir out/imdb
    args = imdb_workflow.parse_args([])
    for init in ("learngene", "random"):
        parse("text_classification", imdb_workflow.fine_tuning_arguments(
            args, Path(world["learngene"]), data / "train.csv", data / "validation.csv", init, work / init))
