"""What the fine-tuning recipes share: where the model comes from, and an accelerate training loop
with evaluation every epoch, model selection on held-out training data, resumable checkpoints,
logging and a progress bar. Each recipe supplies its data, its collator and its evaluation.

The model comes from ``--learngene DIR_OR_REPO --size SIZE`` (built by hf_learngene; ``--init
random`` gives the same architecture from random init, the baseline) or ``--model_name_or_path
DIR_OR_REPO`` (any transformers checkpoint). Flags take the names of transformers'
``examples/pytorch/*_no_trainer.py`` scripts wherever those have one.

Under several processes (``accelerate launch`` or ``torchrun``) every count is one of *global*
optimizer steps: ``--per_device_train_batch_size`` is per process, the data are sharded across
processes, and the learning-rate schedule, warmup and step counts are those of one process with
``per_device_train_batch_size × processes``. The model is built once, by the main process, and
loaded by the others.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import transformers
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import PartialState
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, set_seed
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Sampler

from hf_learngene import Learngene
from hf_learngene.cli_types import (
    LEARNGENE_FOLDER,
    MODEL_FOLDER,
    ArgType,
    check_fresh_output,
    check_size,
    earlier_run,
    earlier_run_message,
    existing_folder,
    folder_or_hub_repo,
    integer,
    name,
    non_negative_number,
    output_folder,
    parse_size,
    positive_integer,
    positive_number,
    presets_of,
    requires,
    seed,
    size,
)
from hf_learngene.saving import write_folder_atomically

STATE_FILE = "recipe_state.json"
EXTRA_FILE = "extra.safetensors"  # tensors a recipe adds to its checkpoints (an EMA)
KEEP_CHECKPOINTS = 2  # the newest resumable checkpoints kept; the best model is kept apart in best/
SCHEDULER_TYPES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
RUN_MARKERS = ("checkpoints", "metrics.csv", "results.json")  # what an earlier run leaves in --output_dir
# the folders a run saves models into: an overwritten run's must go too, or a model of another kind
# saved there later would be refused (a save never writes one model's files over another's)
RUN_OUTPUTS = ("best", "last", "initial-model", "model", "dense", "learngene", "samples")
EPOCH_CHECKPOINTS = "only at each epoch's end"  # what --checkpointing_steps 0 means in train()


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--learngene", type=LEARNGENE_FOLDER, help="the learngene to build the model from")
    source.add_argument("--model_name_or_path", type=MODEL_FOLDER, help="a transformers model to fine-tune as it is")
    group.add_argument("--size", type=size, help="with --learngene: the size of the model built from it")
    group.add_argument("--init", choices=("learngene", "random"), default="learngene",
                       help="with --learngene: 'random' builds the same architecture from random init (baseline)")
    group.add_argument("--revision", type=name, help="Hub revision of --learngene or --model_name_or_path")
    group.add_argument("--tokenizer_name", type=folder_or_hub_repo(what="tokenizer folder"),
                       help="the tokenizer (default: the one shipped with the model)")


def check_model_arguments(parser: argparse.ArgumentParser, args) -> None:
    """--size and --init describe a model built from --learngene, which needs a size it can be built at."""
    if args.learngene and not args.size:
        presets = presets_of(args.learngene)
        preset = f"one of its presets ({', '.join(presets)})" if presets else "a preset of its family"
        parser.error(f"--learngene needs --size: {preset} or sizes as name=value pairs; hf-learngene inspect "
                     f"{args.learngene} lists its presets and sizes")
    requires(parser, args, ["--size", "--init"], bool(args.learngene),
             "with --learngene (they say how the model is built from it)")
    check_size(parser, "--size", args.size, args.learngene)


def resume_argument(marker: str | None) -> ArgType:
    """``latest``, or (where a recipe resumes from one folder) a checkpoint folder holding ``marker``."""
    folder = existing_folder(marker, "checkpoint folder") if marker else None
    valid = "'latest' (the newest checkpoint in --output_dir)" + (f" or {folder.valid}" if folder else "")

    def parse(text: str) -> str:
        if text == "latest":
            return text
        if folder is None:
            raise ValueError("this recipe resumes from its own newest checkpoints, not from a folder")
        return folder.parse(text)

    return ArgType(valid, parse)


def add_run_arguments(group, checkpoint_marker: str | None = STATE_FILE, checkpointing_steps: int = 0,
                      checkpoint_zero: str = EPOCH_CHECKPOINTS) -> None:
    """Arguments every recipe's run takes: where it writes, seeds, precision, checkpoints, logging.
    ``checkpoint_marker``: the file a checkpoint folder holds (None: only ``latest`` resumes);
    ``checkpointing_steps``: its default, and ``checkpoint_zero``: when the recipe checkpoints with 0."""
    group.add_argument("--output_dir", required=True, type=output_folder,
                       help="where the run writes its checkpoints, logs and models")
    group.add_argument("--seed", type=seed, default=0)
    group.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    group.add_argument("--checkpointing_steps", type=integer(0, zero=f"checkpoint {checkpoint_zero}"),
                       default=checkpointing_steps,
                       help=f"checkpoint every N optimizer steps too (default {checkpointing_steps})")
    group.add_argument("--resume_from_checkpoint", type=resume_argument(checkpoint_marker),
                       help="continue an earlier run in --output_dir")
    group.add_argument("--overwrite_output_dir", action="store_true",
                       help="start afresh in an --output_dir that holds an earlier run (its checkpoints and logs go)")
    group.add_argument("--stop_after_steps", type=integer(0, zero="run to the end"), default=0,
                       help="stop after N optimizer steps of this run, checkpointed (for time-sliced jobs)")
    group.add_argument("--report_to", choices=("csv", "tensorboard", "none"), default="csv")
    group.add_argument("--no_progress_bar", action="store_true")


def check_run_arguments(parser: argparse.ArgumentParser, args, markers: tuple[str, ...] = RUN_MARKERS,
                        resumable: Callable[[Path], bool] | None = None) -> None:
    """Refuse, before any work, a run that would mix with an earlier one in --output_dir, or resume from
    nothing. ``resumable(output_dir)``: whether there is something to resume (default: a checkpoint)."""
    if args.resume_from_checkpoint and args.overwrite_output_dir:
        parser.error("--resume_from_checkpoint and --overwrite_output_dir exclude each other: continue the earlier "
                     "run or start afresh")
    can_resume = resumable or (lambda folder: latest_checkpoint(folder) is not None)
    if args.resume_from_checkpoint == "latest" and not can_resume(Path(args.output_dir)):
        parser.error(f"--resume_from_checkpoint latest: no checkpoint in --output_dir {args.output_dir} to continue")
    check_fresh_output(parser, "--output_dir", args.output_dir, markers, "--overwrite_output_dir",
                       args.overwrite_output_dir, "--resume_from_checkpoint latest", bool(args.resume_from_checkpoint))
    if args.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        parser.error("--report_to tensorboard needs the tensorboard package (pip install tensorboard); or use csv")


def add_training_arguments(parser: argparse.ArgumentParser, warmup_fraction: float = 0.1,
                           checkpoint_marker: str | None = STATE_FILE, **defaults) -> None:
    """The run arguments plus the optimisation ones; a recipe sets its own ``defaults`` (e.g.
    ``learning_rate=1e-3``) and the share of the steps it warms up for when ``--num_warmup_steps``
    is not given."""
    group = parser.add_argument_group("training")
    add_run_arguments(group, checkpoint_marker)
    group.add_argument("--num_train_epochs", type=positive_integer, default=3)
    group.add_argument("--per_device_train_batch_size", type=positive_integer, default=16)
    group.add_argument("--per_device_eval_batch_size", type=positive_integer, default=64)
    group.add_argument("--learning_rate", type=positive_number, default=1e-4)
    group.add_argument("--weight_decay", type=non_negative_number, default=0.01)
    group.add_argument("--lr_scheduler_type", choices=SCHEDULER_TYPES, default="linear")
    group.add_argument("--num_warmup_steps", type=integer(0),
                       help=f"optimizer steps of warmup (default: {warmup_fraction * 100:g}%% of the steps)")
    parser.set_defaults(warmup_fraction=warmup_fraction, **defaults)


def start_run(args, find_unused_parameters: bool = False) -> Accelerator:
    """The accelerator (precision, processes, TensorBoard tracker when asked), seeds and the output folder.

    Call it before building the model, so that a random init is seeded too. ``find_unused_parameters``
    is for DDP runs whose set of trained parameters changes (FINE's σ-only stage).
    """
    output_dir = Path(args.output_dir)
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    # under torchrun on a machine without GPUs accelerate would run every process as a separate
    # one-process job (all of them "process 0", writing the same files) unless told to use the CPU
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=launched > 1 and not torch.cuda.is_available(),
                              log_with="tensorboard" if args.report_to == "tensorboard" else None,
                              project_dir=str(output_dir), kwargs_handlers=handlers)
    if accelerator.num_processes != launched:
        raise SystemExit(f"{launched} processes were launched but accelerate joined {accelerator.num_processes}; "
                         "check the launcher and the accelerate config")
    enable_fsdp_on_cpu(accelerator)
    set_seed(args.seed)  # the same on every process: every rank starts from the same random state
    earlier = earlier_run(output_dir, RUN_MARKERS)  # the recipes refuse this at parse time; a caller may not
    if earlier and not args.resume_from_checkpoint:
        if not args.overwrite_output_dir:
            raise SystemExit(earlier_run_message("--output_dir", output_dir, earlier, "--overwrite_output_dir",
                                                 "--resume_from_checkpoint latest"))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:  # an old run's higher-step checkpoints would outlive the new ones
            outputs = [output_dir / name for name in RUN_OUTPUTS if (output_dir / name).exists()]
            for path in [*earlier, *outputs]:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    if args.report_to == "tensorboard":
        accelerator.init_trackers("logs", config={k: v for k, v in vars(args).items()
                                                  if isinstance(v, (int, float, str, bool))})
    return accelerator


def enable_fsdp_on_cpu(accelerator: Accelerator) -> None:
    """Honour an FSDP launch config on CPU processes, where accelerate would silently fall back to DDP.

    accelerate enables FSDP only for GPU-like devices; torch's FSDP2 (``fully_shard``) also runs on
    CPU with gloo, so a CPU run asked for FSDP (``ACCELERATE_USE_FSDP=true``, as ``accelerate launch``
    with an FSDP config sets) is switched to it here rather than quietly replicating the model.
    """
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return
    if accelerator.distributed_type == DistributedType.FSDP or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise SystemExit("FSDP on CPU needs FSDP2: set fsdp_version: 2 in the accelerate config (FSDP_VERSION=2)")
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    PartialState().distributed_type = DistributedType.FSDP
    accelerator.state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin


def step_seed(seed: int, step: int, process_index: int = 0) -> int:
    """The seed of one optimizer step on one process: reproducible on resume, distinct across ranks
    (a hash of the three, so no (step, rank) pair shares another's seed)."""
    return int(np.random.SeedSequence([seed, step, process_index]).generate_state(1)[0])


def build_once(accelerator: Accelerator, output_dir: Path, build: Callable[[], object], load: Callable[[Path], object]):
    """``build()`` on the main process only; with several processes the others ``load`` what it saved.

    Building from a learngene holds the learngene and the whole target in host memory; doing it
    once, not once per rank, keeps a node's peak at one build plus the per-rank copies training needs.
    The folder lies in the output directory, which must be shared by all nodes (as checkpoints are).
    """
    if accelerator.num_processes == 1:
        return build()
    folder = output_dir / "initial-model"
    built = None
    if accelerator.is_main_process:
        built = build()
        write_folder_atomically(folder, built.save_pretrained)
    accelerator.wait_for_everyone()
    model = built if built is not None else load(folder)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(folder, ignore_errors=True)
    return model


def load_model(args, auto_class, accelerator: Accelerator, **config_overrides):
    """The model and tokenizer the arguments name; raises ``SystemExit`` with a clear message on bad input.

    Call after :func:`start_run` (seeded); a model built from a learngene, or the random-init
    baseline, is built by the main process only.
    """
    plain_class = getattr(transformers, auto_class.__name__)
    if args.model_name_or_path:
        model = plain_class.from_pretrained(args.model_name_or_path, revision=args.revision, **config_overrides)
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer_name or args.model_name_or_path,
                                                               revision=args.revision)
        return model, tokenizer
    learngene = Learngene.from_pretrained(args.learngene, revision=args.revision)
    size = parse_size(args.size)
    tokenizer = (transformers.AutoTokenizer.from_pretrained(args.tokenizer_name) if args.tokenizer_name
                 else learngene.processor)
    if tokenizer is None:
        raise SystemExit(f"{args.learngene} ships no tokenizer; pass --tokenizer_name NAME_OR_PATH")

    target = learngene.target_config(size, **config_overrides)  # a bad size fails on every rank, before any wait

    def build():
        if args.init == "random":
            return plain_class.from_config(target)
        return auto_class.from_learngene(learngene, size, show_progress=False, **config_overrides)

    return build_once(accelerator, Path(args.output_dir), build, plain_class.from_pretrained), tokenizer


class EpochOrder(Sampler):
    """A shuffled order that depends only on the seed and the epoch, so a resumed run sees the same batches."""

    def __init__(self, length: int, seed: int, epoch: int):
        self.length, self.seed, self.epoch = length, seed, epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self):
        return self.length


class MetricsLog:
    """Metrics to TensorBoard (through accelerate's tracker) or to ``metrics.csv`` in the output folder.

    Each CSV row goes out in one write, so an interruption never leaves half a row; a resumed run
    first drops the rows the interrupted one logged after its checkpoint, so no step is counted twice.
    """

    HEADER = ["step", "name", "value", "time"]

    def __init__(self, accelerator: Accelerator, args, resumed_at_step: int | None = None):
        self.accelerator, self.kind, self.path = accelerator, args.report_to, Path(args.output_dir) / "metrics.csv"
        if resumed_at_step is not None and self.kind == "csv" and accelerator.is_main_process and self.path.exists():
            with self.path.open(newline="") as handle:
                rows = [row for row in csv.reader(handle) if len(row) == 4 and row[0].isdigit()
                        and int(row[0]) <= resumed_at_step]
            write_text_atomically(self.path, self._format([self.HEADER, *rows]))

    @staticmethod
    def _format(rows) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue()

    def log(self, values: dict, step: int) -> None:
        if self.kind == "tensorboard":
            self.accelerator.log(values, step=step)
        elif self.kind == "csv" and self.accelerator.is_main_process:
            rows = [] if self.path.exists() else [self.HEADER]
            rows += [[step, name, value, f"{time.time():.3f}"] for name, value in values.items()]
            with self.path.open("a", newline="") as handle:
                handle.write(self._format(rows))


def write_text_atomically(path: Path, text: str) -> None:
    """Write a file under a temporary name and rename it, so readers never see a partial one."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text)
    os.replace(staging, path)


def completed_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints written to the end, oldest first (a ``.tmp`` folder is an interrupted write)."""
    folders = [p for p in (output_dir / "checkpoints").glob("step-*") if p.name.split("-")[1].isdigit()]
    return sorted(folders, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output_dir: Path) -> Path | None:
    folders = completed_checkpoints(output_dir)
    return folders[-1] if folders else None


def train(args, accelerator: Accelerator, model, tokenizer, train_dataset, collate: Callable, evaluate: Callable,
          main_metric: str, greater_is_better: bool = True, select: Callable | None = None,
          end_training: bool = True) -> dict:
    """Fine-tune ``model``; ``evaluate(model, accelerator)`` returns the evaluation set's metrics after every epoch.

    Model selection never looks at the evaluation set: with ``select`` (the same kind of function
    on a held-out part of the *training* data) the epoch it scores best is kept in
    ``output_dir/best`` and reported; without it the last epoch is reported. The report, also
    written to ``output_dir/results.json``, gives the evaluation set's ``main_metric`` at that epoch.

    ``end_training=False`` finishes only this run's trackers and keeps the process group, for a
    caller that trains again in this process (one fold after another); it then calls
    ``accelerator.end_training()`` once, when it is done.
    """
    output_dir = Path(args.output_dir)

    def epoch_loader(epoch: int):
        return accelerator.prepare_data_loader(DataLoader(train_dataset, batch_size=args.per_device_train_batch_size,
                                                          sampler=EpochOrder(len(train_dataset), args.seed, epoch),
                                                          collate_fn=collate))

    steps_per_epoch = len(epoch_loader(0))  # per-process batches, dealt across processes: global steps
    total_steps = steps_per_epoch * args.num_train_epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(args.warmup_fraction * total_steps)
    # The schedule is stepped by hand once per optimizer step: accelerate would step a prepared one
    # once per process, ending it after 1/N of training on N processes.
    schedule = transformers.get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=warmup,
                                         num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(schedule)

    id2label = accelerator.unwrap_model(model).config.id2label or {}
    geometry = {"processes": accelerator.num_processes, "batch_size": args.per_device_train_batch_size,
                "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                "labels": [id2label[i] for i in sorted(id2label)]}  # a class's row must mean the same class
    state = {"step": 0, "selected": None, "selected_epoch": None, "history": [], "geometry": geometry}
    checkpoint = resume_point(args, output_dir)
    if checkpoint is not None:
        state = json.loads((checkpoint / STATE_FILE).read_text())
        check_same_geometry(state.get("geometry"), geometry, checkpoint)
        accelerator.load_state(str(checkpoint))
        accelerator.print(f"resumed from {checkpoint} at step {state['step']}")
    log = MetricsLog(accelerator, args, resumed_at_step=state["step"] if checkpoint is not None else None)
    progress = transformers.utils.logging.tqdm(total=total_steps, initial=state["step"], desc="training",
                                               disable=args.no_progress_bar or not accelerator.is_local_main_process)
    steps_this_run = 0
    # an epoch trained to its end but not evaluated resumes
    for epoch in range(len(state["history"]), args.num_train_epochs):
        done_in_epoch = state["step"] - epoch * steps_per_epoch
        loader = epoch_loader(epoch)
        if done_in_epoch:
            loader = accelerator.skip_first_batches(loader, done_in_epoch)
        model.train()
        for batch in loader if done_in_epoch < steps_per_epoch else ():
            # dropout masks depend only on (seed, step, rank): a resumed run repeats the uninterrupted one
            torch.manual_seed(step_seed(args.seed, state["step"], accelerator.process_index))
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: the schedule waits too
                schedule.step()
            optimizer.zero_grad()
            state["step"] += 1
            steps_this_run += 1
            progress.update(1)
            loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
            progress.set_postfix(loss=f"{loss_value:.4f}")
            log.log({"train/loss": loss_value, "train/lr": schedule.get_last_lr()[0]}, state["step"])
            stop = args.stop_after_steps and steps_this_run >= args.stop_after_steps
            if stop or (args.checkpointing_steps and state["step"] % args.checkpointing_steps == 0):
                save_checkpoint(accelerator, output_dir, state)
            if stop:
                progress.close()
                accelerator.print(f"stopped after {steps_this_run} steps as asked; resume with "
                                  "--resume_from_checkpoint latest")
                finish(accelerator, end_training)
                return {"stopped_at_step": state["step"]}
        metrics = evaluate(model, accelerator)
        entry = {"epoch": epoch + 1, "step": state["step"], **metrics}
        log.log({f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, state["step"])
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        if select is not None:
            entry["selection"] = chosen = select(model, accelerator)
            log.log({f"selection/{k}": v for k, v in chosen.items() if isinstance(v, (int, float))}, state["step"])
            shown += f" | held-out training data: {main_metric} {chosen[main_metric]:.4f}"
            value, best = chosen[main_metric], state["selected"]
            if is_better(value, best, greater_is_better):
                state["selected"], state["selected_epoch"] = value, epoch + 1
                save_model(accelerator, model, tokenizer, output_dir / "best")
        accelerator.print(f"epoch {epoch + 1}: {shown}")
        state["history"].append(entry)
        save_checkpoint(accelerator, output_dir, state)
    progress.close()
    save_model(accelerator, model, tokenizer, output_dir / "last")
    epoch = state["selected_epoch"] if select is not None else len(state["history"])
    report = {"main_metric": main_metric, "result": state["history"][epoch - 1][main_metric], "epoch": epoch,
              "selection": "best epoch on held-out training data" if select is not None else "last epoch",
              "history": state["history"], "processes": accelerator.num_processes,
              "command": " ".join(sys.argv)}
    if accelerator.is_main_process:
        write_text_atomically(output_dir / "results.json", json.dumps(report, indent=2) + "\n")
    finish(accelerator, end_training)
    return report


def finish(accelerator: Accelerator, end_training: bool) -> None:
    """Close the run's trackers; with ``end_training`` also destroy the process group (accelerate's
    ``end_training``), after which no later run in this process could communicate."""
    if end_training:
        accelerator.end_training()
        return
    for tracker in accelerator.trackers:  # what end_training does first; accelerate has no call for it alone
        tracker.finish()


def check_same_geometry(saved: dict | None, now: dict, checkpoint: Path) -> None:
    """Refuse to resume with another process count, batch size, schedule length or label order: the
    data order, the learning-rate schedule or the meaning of each output row would silently differ
    from the run being continued."""
    if saved is None:
        return  # a checkpoint of an older version of the recipe
    # a setting the checkpoint does not record is one an older version of the recipe did not record
    changed = [f"{key}: {saved[key]} then, {value} now" for key, value in now.items()
               if key in saved and saved[key] != value]
    if changed:
        raise SystemExit(f"{checkpoint} was written by a run with other settings ({'; '.join(changed)}); resume with "
                         "the same number of processes, --per_device_train_batch_size, length and labels, or start "
                         "afresh")


def is_better(value: float, best: float | None, greater_is_better: bool) -> bool:
    """Whether ``value`` beats ``best``; ``nan`` (a correlation of constant predictions) is the worst score."""
    if math.isnan(value):
        return best is None
    if best is None or math.isnan(best):
        return True
    return value > best if greater_is_better else value < best


def resume_point(args, output_dir: Path) -> Path | None:
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:  # parse_args refuses this; a Python caller building args itself may not
            raise SystemExit(f"--resume_from_checkpoint latest: no checkpoint under {output_dir / 'checkpoints'}")
        return checkpoint
    checkpoint = Path(args.resume_from_checkpoint)
    if not (checkpoint / STATE_FILE).is_file():  # as above: the option's type checks this at parse time
        raise SystemExit(f"{checkpoint} is not a checkpoint of this recipe ({STATE_FILE} is missing)")
    return checkpoint


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: dict,
                    extra: Callable[[], dict[str, torch.Tensor]] | None = None) -> None:
    """Model, optimizer, schedule and RNG states, written under a temporary name and renamed.

    ``extra()`` (called on every process: it may gather sharded tensors) returns further tensors
    the recipe needs to resume, e.g. an EMA; the main process writes them to ``extra.safetensors``.
    """
    final = output_dir / "checkpoints" / f"step-{state['step']}"
    staging = final.with_name(final.name + ".tmp")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    tensors = extra() if extra is not None else None
    accelerator.wait_for_everyone()  # every rank's files (its RNG state, its shard) are in staging
    if accelerator.is_main_process:
        if tensors is not None:
            save_file({k: v.contiguous() for k, v in tensors.items()}, staging / EXTRA_FILE)
        (staging / STATE_FILE).write_text(json.dumps(state, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        for old in completed_checkpoints(output_dir)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def full_state_dict(accelerator: Accelerator, model) -> dict[str, torch.Tensor]:
    """The whole model's state dict on the main process, gathered from every rank under FSDP
    (call it on every process: the gather is collective). Other ranks may get an empty dict."""
    return accelerator.get_state_dict(model)


def save_model(accelerator: Accelerator, model, tokenizer, folder: Path) -> None:
    """An ordinary ``save_pretrained`` folder (with the tokenizer), replaced atomically.

    The weights are gathered on all ranks (a full state dict, also under FSDP), so the folder
    loads with plain ``from_pretrained``.
    """
    state_dict = full_state_dict(accelerator, model)
    if accelerator.is_main_process:
        def write(staging: Path) -> None:
            accelerator.unwrap_model(model).save_pretrained(staging, state_dict=state_dict)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)

        write_folder_atomically(folder, write)
    accelerator.wait_for_everyone()


def check_columns(dataset, needed: list[str], where: str) -> None:
    """A clear error naming the columns a dataset has when it lacks the ones asked for."""
    missing = [c for c in needed if c not in dataset.column_names]
    if missing:  # a local CSV/JSON-lines file is checked at parse time; a Hub dataset or a JSON document here
        raise SystemExit(f"{where} has no column(s) {missing}; it has {dataset.column_names}. "
                         "Name the right ones with --text_column_names / --label_column_name")
