"""Train an audio classifier (PIPMN by default) with grouped k-fold cross-validation, with accelerate.

    # offline: the drum sounds of the Debian hydrogen-drumkits package, 5 folds, no kit in two folds
    python recipes/audio_classification.py --dataset_name drumkits --folds 5 --output_dir out/drums
    # a local audiofolder (one sub-folder per class), or ESC-50 / UrbanSound8K / GTZAN by name (online)
    accelerate launch recipes/audio_classification.py --dataset_name esc50 --folds 5 --output_dir out/esc50
    # a narrower PIPMN built from a trained PIPMN's learngene, against the same size from random init
    python recipes/audio_classification.py --dataset_name drumkits --learngene out/pipmn-lg --size channels=200,400 ...

Every fold trains a fresh model on the other folds' clips and is scored on its own after the last
epoch (no epoch is picked by test accuracy); ``results.json`` holds each fold's accuracy and their
mean ± std. Features are computed once and cached in ``OUTPUT_DIR``; unreadable clips are skipped
and counted. Each fold checkpoints every epoch, and ``--resume_from_checkpoint latest`` continues
an interrupted run where it stopped (finished folds are kept).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from audio_data import DRUMKITS, HUB_AUDIO_DATASETS, featurize, grouped_folds, load_audio_set  # noqa: E402
from training_loop import (  # noqa: E402
    RUN_MARKERS,
    add_training_arguments,
    check_model_arguments,
    check_run_arguments,
    latest_checkpoint,
    start_run,
    train,
    write_text_atomically,
)

import hf_learngene  # noqa: E402
from hf_learngene import Learngene, PIPMNConfig, PIPMNFeatureExtractor, PIPMNForAudioClassification  # noqa: E402
from hf_learngene.cli_types import (  # noqa: E402
    LEARNGENE_FOLDER,
    MODEL_FOLDER,
    dataset,
    integer,
    parse_size,
    positive_integer,
    requires,
    size,
    state_ranges,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default="drumkits",
                      type=dataset(("drumkits", *HUB_AUDIO_DATASETS), "audiofolder"),
                      help="'drumkits' (Debian hydrogen-drumkits), a local audiofolder, or esc50 / urbansound8k / gtzan")
    data.add_argument("--folds", type=integer(2), default=5, help="k of the grouped k-fold cross-validation")
    data.add_argument("--only_fold", type=integer(0), help="run this fold alone (0-based, below --folds)")
    data.add_argument("--feature_type", choices=("log_mel", "mfcc", "five_cepstra"), default="log_mel")
    model = parser.add_argument_group("model")
    source = model.add_mutually_exclusive_group()
    source.add_argument("--model_name_or_path", type=MODEL_FOLDER,
                        help="a saved audio-classification model (default: a new PIPMN)")
    source.add_argument("--learngene", type=LEARNGENE_FOLDER,
                        help="a PIPMN learngene: build the model from it at --size")
    model.add_argument("--size", type=size,
                       help="with --learngene: a preset (tiny, small, paper, large) or channels=200,400")
    model.add_argument("--init", choices=("learngene", "random"), default="learngene",
                       help="with --learngene: 'random' builds the same size from random init (the baseline)")
    model.add_argument("--encoder_channels", type=positive_integer, nargs="+", default=[400, 800],
                       help="a new PIPMN's widths")
    # the paper's optimiser: AdamW, lr 1e-3, weight decay 0.05
    add_training_arguments(parser, warmup_fraction=0.05, checkpoint_marker=None, num_train_epochs=60,
                           per_device_train_batch_size=64, per_device_eval_batch_size=256, learning_rate=1e-3,
                           weight_decay=0.05)
    state_ranges(parser)
    args = parser.parse_args(argv)
    if args.dataset_name == "drumkits" and not any(DRUMKITS.glob("*/drumkit.xml")):
        parser.error(f"--dataset_name drumkits: no drum kits under {DRUMKITS}; apt-get install hydrogen-drumkits")
    if args.only_fold is not None and args.only_fold >= args.folds:
        parser.error(f"--only_fold {args.only_fold} is not one of the {args.folds} folds (0 to {args.folds - 1})")
    requires(parser, args, ["--encoder_channels"], not (args.learngene or args.model_name_or_path),
             "for a new PIPMN (--learngene and --model_name_or_path bring their own)")
    check_model_arguments(parser, args)
    # a run of one fold meets only that fold's earlier run (the summary results.json is rewritten by any run)
    markers = (f"fold-{args.only_fold}",) if args.only_fold is not None else (*RUN_MARKERS, "fold-*")
    check_run_arguments(parser, args, markers=markers, resumable=any_fold_started)
    return args


def any_fold_started(output_dir: Path) -> bool:
    """Whether an earlier run left a fold: ``--resume_from_checkpoint latest`` keeps the finished ones,
    continues the checkpointed ones and starts the others afresh (see main)."""
    return any(output_dir.glob("fold-*"))


def new_model(args, classes: list[str]):
    labels = {"id2label": dict(enumerate(classes)), "label2id": {c: i for i, c in enumerate(classes)}}
    if args.model_name_or_path:
        return hf_learngene.AutoModelForAudioClassification.from_pretrained(
            args.model_name_or_path, num_labels=len(classes), ignore_mismatched_sizes=True, **labels)
    if args.learngene:
        learngene = Learngene.from_pretrained(args.learngene)
        size = parse_size(args.size)
        if args.init == "random":
            return PIPMNForAudioClassification(learngene.target_config(size, num_labels=len(classes), **labels))
        return hf_learngene.AutoModelForAudioClassification.from_learngene(
            learngene, size, num_labels=len(classes), show_progress=False, **labels).train()
    return PIPMNForAudioClassification(PIPMNConfig(encoder_channels=args.encoder_channels, **labels))


def main(argv=None) -> dict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    data = load_audio_set(args.dataset_name)
    extractor = PIPMNFeatureExtractor(feature_type=args.feature_type)
    # under several processes every rank reads the cache and only the first writes it
    features, kept, skipped = featurize(data, extractor, cache=output_dir, show_progress=not args.no_progress_bar,
                                        write_cache=int(os.environ.get("RANK", "0")) == 0)
    labels = torch.tensor([data.labels[i] for i in kept])
    groups = [data.groups[i] for i in kept]
    print(f"{len(kept)} clips of {len(data.classes)} classes in {len(set(groups))} groups; "
          f"{skipped} unreadable clip(s) skipped; left out: {data.left_out or 'none'}")
    folds = grouped_folds(groups, args.folds, seed=args.seed)
    fold_results = []
    accelerator = None
    for index, test in enumerate(folds):
        if args.only_fold is not None and index != args.only_fold:
            continue
        fold_dir = output_dir / f"fold-{index}"
        if not args.overwrite_output_dir and (fold_dir / "results.json").exists():  # a finished fold is kept
            fold_results.append(json.loads((fold_dir / "results.json").read_text()))
            continue
        test_set = set(test)
        train_rows = [{"input_features": features[i], "labels": labels[i]} for i in range(len(kept)) if i not in test_set]
        test_rows = [{"input_features": features[i], "labels": labels[i]} for i in test]
        fold_args = copy.copy(args)
        fold_args.output_dir = str(fold_dir)
        if args.resume_from_checkpoint == "latest" and latest_checkpoint(fold_dir) is None:
            fold_args.resume_from_checkpoint = None  # this fold had not reached a checkpoint: it starts afresh
            fold_args.overwrite_output_dir = True
        accelerator = start_run(fold_args)
        torch.manual_seed(args.seed + index)  # each fold's model starts from its own (seeded) init
        model = new_model(args, data.classes)
        # the process group outlives the fold (accelerate's end_training would destroy it): ended once, below
        report = train(fold_args, accelerator, model, extractor, train_rows, collate,
                       evaluator(test_rows, args.per_device_eval_batch_size), main_metric="accuracy",
                       end_training=False)
        if "stopped_at_step" in report:
            accelerator.end_training()
            return report
        report.update(fold=index, test_groups=sorted({groups[i] for i in test}), test_clips=len(test),
                      accuracy=report["history"][-1]["accuracy"])
        write_text_atomically(fold_dir / "results.json", json.dumps(report, indent=2) + "\n")
        print(f"fold {index}: accuracy {report['accuracy']:.4f} on {len(test)} clips of {', '.join(report['test_groups'])}")
        fold_results.append(report)
    accuracies = [r["accuracy"] for r in fold_results]
    summary = {
        "dataset": args.dataset_name, "folds": args.folds, "clips": len(kept), "skipped_unreadable": skipped,
        "left_out": data.left_out, "classes": data.classes,
        "parameters": sum(p.numel() for p in new_model(args, data.classes).parameters()),
        "fold_accuracy": accuracies,
        "accuracy_mean": statistics.mean(accuracies),
        "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "command": " ".join(["python", "recipes/audio_classification.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    write_text_atomically(output_dir / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"accuracy {summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f} over {len(accuracies)} fold(s)")
    if accelerator is not None:  # None when every fold had finished in an earlier run
        accelerator.end_training()
    return summary


def collate(rows: list[dict]) -> dict:
    return {"input_features": torch.stack([r["input_features"] for r in rows]),
            "labels": torch.stack([r["labels"] for r in rows])}


def evaluator(rows: list[dict], batch_size: int):
    def evaluate(model, accelerator) -> dict:
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = collate(rows[start:start + batch_size])
                logits = model(input_features=batch["input_features"].to(accelerator.device)).logits
                correct += (logits.argmax(-1).cpu() == batch["labels"]).sum().item()
        model.train()
        return {"accuracy": correct / len(rows)}

    return evaluate


if __name__ == "__main__":
    main()
