"""What the fine-tuning recipes share: where the model comes from, and an accelerate training loop
with evaluation every epoch, the best checkpoint kept, resumable checkpoints, logging and a
progress bar. Each recipe supplies its data, its collator and its evaluation.

The model comes from ``--learngene DIR_OR_REPO --size SIZE`` (built by hf_learngene; ``--init
random`` gives the same architecture from random init, the baseline) or ``--model DIR_OR_REPO``
(any transformers checkpoint).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Sampler

from hf_learngene import Learngene
from hf_learngene.cli import parse_size
from hf_learngene.saving import write_folder_atomically

STATE_FILE = "recipe_state.json"
KEEP_CHECKPOINTS = 2  # the newest resumable checkpoints kept; the best model is kept apart in best/


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--learngene", help="a learngene folder or Hub repo to build the model from")
    source.add_argument("--model", help="a transformers model folder or Hub repo to fine-tune as it is")
    group.add_argument("--size", help="with --learngene: a preset (e.g. mini) or layers=4,hidden=256,heads=4")
    group.add_argument("--init", choices=("learngene", "random"), default="learngene",
                       help="with --learngene: 'random' builds the same architecture from random init (baseline)")
    group.add_argument("--revision", help="Hub revision of --learngene or --model")
    group.add_argument("--tokenizer", help="a tokenizer folder or Hub repo (default: the one shipped with the model)")


def add_run_arguments(group) -> None:
    """Arguments every recipe's run takes: where it writes, seeds, precision, checkpoints, logging."""
    group.add_argument("--output_dir", required=True)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    group.add_argument("--checkpointing_steps", type=int, default=0,
                       help="also checkpoint every N optimizer steps (0: only where the recipe always does, "
                            "e.g. at each epoch's end)")
    group.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest' in --output_dir")
    group.add_argument("--stop_after_steps", type=int, default=0,
                       help="stop after N optimizer steps of this run, checkpointed (for time-sliced jobs)")
    group.add_argument("--report_to", choices=("csv", "tensorboard", "none"), default="csv")
    group.add_argument("--no_progress_bar", action="store_true")


def add_training_arguments(parser: argparse.ArgumentParser, sequence_length: bool = True, **defaults) -> None:
    """The run arguments plus the optimisation ones; a recipe sets its own ``defaults`` (e.g. ``lr=1e-3``)
    and leaves out ``--max_length`` when its inputs are not token sequences."""
    group = parser.add_argument_group("training")
    add_run_arguments(group)
    group.add_argument("--epochs", type=int, default=3)
    group.add_argument("--batch_size", type=int, default=16)
    group.add_argument("--eval_batch_size", type=int, default=64)
    group.add_argument("--lr", type=float, default=1e-4)
    group.add_argument("--weight_decay", type=float, default=0.01)
    group.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps spent warming up")
    if sequence_length:
        group.add_argument("--max_length", type=int, default=128)
    parser.set_defaults(**defaults)


def start_run(args) -> Accelerator:
    """The accelerator (precision, TensorBoard tracker when asked), seeds and the output folder."""
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              log_with="tensorboard" if args.report_to == "tensorboard" else None,
                              project_dir=str(output_dir))
    set_seed(args.seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.report_to == "tensorboard":
        accelerator.init_trackers("logs", config={k: v for k, v in vars(args).items()
                                                  if isinstance(v, (int, float, str, bool))})
    return accelerator


def load_model(args, auto_class, **config_overrides):
    """The model and tokenizer the arguments name; raises ``SystemExit`` with a clear message on bad input."""
    if args.model:
        model = getattr(transformers, auto_class.__name__).from_pretrained(args.model, revision=args.revision,
                                                                           **config_overrides)
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer or args.model, revision=args.revision)
        return model, tokenizer
    if not args.size:
        raise SystemExit("--learngene needs --size: a preset such as 'mini' or 'layers=4,hidden=256,heads=4'")
    learngene = Learngene.from_pretrained(args.learngene, revision=args.revision)
    size = parse_size(args.size)
    if args.init == "random":
        model = getattr(transformers, auto_class.__name__).from_config(learngene.target_config(size, **config_overrides))
    else:
        model = auto_class.from_learngene(learngene, size, show_progress=False, **config_overrides)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else learngene.processor
    if tokenizer is None:
        raise SystemExit(f"{args.learngene} ships no tokenizer; pass --tokenizer NAME_OR_PATH")
    return model, tokenizer


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
    """Metrics to TensorBoard (through accelerate's tracker) or to ``metrics.csv`` in the output folder."""

    def __init__(self, accelerator: Accelerator, args):
        self.accelerator, self.kind, self.path = accelerator, args.report_to, Path(args.output_dir) / "metrics.csv"

    def log(self, values: dict, step: int) -> None:
        if self.kind == "tensorboard":
            self.accelerator.log(values, step=step)
        elif self.kind == "csv" and self.accelerator.is_main_process:
            new = not self.path.exists()
            with self.path.open("a", newline="") as handle:
                writer = csv.writer(handle)
                for name, value in values.items():
                    if new:
                        writer.writerow(["step", "name", "value", "time"])
                        new = False
                    writer.writerow([step, name, value, f"{time.time():.3f}"])


def completed_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints written to the end, oldest first (a ``.tmp`` folder is an interrupted write)."""
    folders = [p for p in (output_dir / "checkpoints").glob("step-*") if p.name.split("-")[1].isdigit()]
    return sorted(folders, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output_dir: Path) -> Path | None:
    folders = completed_checkpoints(output_dir)
    return folders[-1] if folders else None


def train(args, model, tokenizer, train_dataset, collate: Callable, evaluate: Callable, main_metric: str,
          greater_is_better: bool = True) -> dict:
    """Fine-tune ``model``; ``evaluate(model, accelerator)`` returns a metrics dict after every epoch.

    Keeps the best model (by ``main_metric``) in ``output_dir/best`` and returns the final report,
    also written to ``output_dir/results.json``.
    """
    output_dir = Path(args.output_dir)
    accelerator = start_run(args)
    steps_per_epoch = math.ceil(len(train_dataset) / (args.batch_size * accelerator.num_processes))
    total_steps = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(args.warmup * total_steps), total_steps)
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)

    state = {"step": 0, "best": None, "best_epoch": None, "history": []}
    checkpoint = resume_point(args, output_dir)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / STATE_FILE).read_text())
        accelerator.print(f"resumed from {checkpoint} at step {state['step']}")
    log = MetricsLog(accelerator, args)
    progress = transformers.utils.logging.tqdm(total=total_steps, initial=state["step"], desc="training",
                                               disable=args.no_progress_bar or not accelerator.is_local_main_process)
    steps_this_run = 0
    for epoch in range(state["step"] // steps_per_epoch, args.epochs):
        loader = accelerator.prepare_data_loader(DataLoader(train_dataset, batch_size=args.batch_size,
                                                            sampler=EpochOrder(len(train_dataset), args.seed, epoch),
                                                            collate_fn=collate))
        done_in_epoch = state["step"] - epoch * steps_per_epoch
        if done_in_epoch:
            loader = accelerator.skip_first_batches(loader, done_in_epoch)
        model.train()
        for batch in loader:
            # dropout masks depend only on (seed, step), so a resumed run repeats the uninterrupted one exactly
            torch.manual_seed(args.seed * 1_000_003 + state["step"])
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            state["step"] += 1
            steps_this_run += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            log.log({"train/loss": loss.item(), "train/lr": schedule.get_last_lr()[0]}, state["step"])
            stop = args.stop_after_steps and steps_this_run >= args.stop_after_steps
            if stop or (args.checkpointing_steps and state["step"] % args.checkpointing_steps == 0):
                save_checkpoint(accelerator, output_dir, state)
            if stop:
                progress.close()
                accelerator.print(f"stopped after {steps_this_run} steps as asked; resume with "
                                  "--resume_from_checkpoint latest")
                accelerator.end_training()
                return {"stopped_at_step": state["step"]}
        metrics = evaluate(model, accelerator)
        state["history"].append({"epoch": epoch + 1, "step": state["step"], **metrics})
        log.log({f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, state["step"])
        accelerator.print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                                              if isinstance(v, float)))
        value = metrics[main_metric]
        if state["best"] is None or (value > state["best"] if greater_is_better else value < state["best"]):
            state["best"], state["best_epoch"] = value, epoch + 1
            save_model(accelerator, model, tokenizer, output_dir / "best")
        save_checkpoint(accelerator, output_dir, state)
    progress.close()
    save_model(accelerator, model, tokenizer, output_dir / "last")
    report = {"main_metric": main_metric, "best": state["best"], "best_epoch": state["best_epoch"],
              "history": state["history"], "command": " ".join(sys.argv)}
    if accelerator.is_main_process:
        (output_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    accelerator.end_training()
    return report


def resume_point(args, output_dir: Path) -> Path | None:
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            raise SystemExit(f"--resume_from_checkpoint latest: no checkpoint under {output_dir / 'checkpoints'}")
        return checkpoint
    checkpoint = Path(args.resume_from_checkpoint)
    if not (checkpoint / STATE_FILE).is_file():
        raise SystemExit(f"{checkpoint} is not a checkpoint of this recipe ({STATE_FILE} is missing)")
    return checkpoint


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: dict) -> None:
    """Model, optimizer, schedule and RNG states, written under a temporary name and renamed."""
    final = output_dir / "checkpoints" / f"step-{state['step']}"
    staging = final.with_name(final.name + ".tmp")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.save_state(str(staging))
    if accelerator.is_main_process:
        (staging / STATE_FILE).write_text(json.dumps(state, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        for old in completed_checkpoints(output_dir)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def save_model(accelerator: Accelerator, model, tokenizer, folder: Path) -> None:
    """An ordinary ``save_pretrained`` folder (with the tokenizer), replaced atomically."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        def write(staging: Path) -> None:
            accelerator.unwrap_model(model).save_pretrained(staging)
            tokenizer.save_pretrained(staging)

        write_folder_atomically(folder, write)
    accelerator.wait_for_everyone()


def check_columns(dataset, needed: list[str], where: str) -> None:
    """A clear error naming the columns a dataset has when it lacks the ones asked for."""
    missing = [c for c in needed if c not in dataset.column_names]
    if missing:
        raise SystemExit(f"{where} has no column(s) {missing}; it has {dataset.column_names}. "
                         "Name the right ones with --text_columns / --label_column")

