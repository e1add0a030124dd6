"""Fine-tune a text classifier (or regressor) on GLUE or on local CSV/JSON files, with accelerate.

    # a model built from a learngene, on a GLUE task (needs the Hub)
    accelerate launch recipes/text_classification.py --task_name mrpc --learngene me/minilm-front --size mini \\
        --output_dir out/mrpc
    # offline, on local files, against the same architecture from random init
    python recipes/text_classification.py --train_file train.csv --validation_file dev.csv \\
        --text_column_names text --label_column_name label --learngene out/minilm/learngene-front --size mini \\
        --init random --output_dir out/imdb-random

Each GLUE task is scored with its official metrics (accuracy, F1, Matthews correlation,
Pearson/Spearman); local files with accuracy, or, for a regression (a label column of numbers with
any non-integer value, or ``--task_type regression``), with Pearson/Spearman as STS-B. Rows without
a label are refused. The epoch is chosen on a held-out part of the training data
(``--selection_fraction``, 10% by default; 0 reports the last epoch), never on the evaluation set;
that epoch's model is kept in ``OUTPUT_DIR/best`` and ``results.json`` gives its evaluation-set
score beside every epoch's metrics.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import NoReturn

import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_loop import (  # noqa: E402
    add_model_arguments,
    add_training_arguments,
    check_columns,
    check_model_arguments,
    check_run_arguments,
    load_model,
    start_run,
    train,
)

import hf_learngene  # noqa: E402
from hf_learngene.cli_types import (  # noqa: E402
    ArgType,
    existing_file,
    name,
    number,
    positive_integer,
    requires,
    state_ranges,
)
from hf_learngene.metrics import GLUE_TASKS, glue_metrics  # noqa: E402

DATA_FILE = existing_file((".csv", ".json", ".jsonl"))


def _text_columns(text: str) -> list[str]:
    columns = [column.strip() for column in text.split(",")]
    if len(columns) > 2 or not all(columns):
        raise ValueError("")
    return columns


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--task_name", type=str.lower, choices=list(GLUE_TASKS), help="a GLUE task (from the Hub)")
    source.add_argument("--train_file", type=DATA_FILE, help="a local data file")
    data.add_argument("--validation_file", type=DATA_FILE, help="with --train_file: the evaluation data")
    data.add_argument("--text_column_names", default="text",
                      type=ArgType("one column name, or two separated by a comma (a sentence pair)", _text_columns),
                      help="with --train_file: the text column, or two for sentence pairs (sentence1,sentence2)")
    data.add_argument("--label_column_name", type=name, default="label", help="with --train_file: the label column")
    data.add_argument("--task_type", choices=("auto", "classification", "regression"), default="auto",
                      help="with --train_file: 'auto' regresses on a label column of numbers with any non-integer "
                           "value (scores such as 3.8) and classifies any other, whole numbers (0, 1, 5.0) included")
    data.add_argument("--max_train_samples", type=positive_integer, help="use only this many (default: all)")
    data.add_argument("--max_eval_samples", type=positive_integer, help="use only this many (default: all)")
    data.add_argument("--max_length", type=positive_integer, default=128,
                      help="inputs are truncated to this many tokens")
    data.add_argument("--selection_fraction", type=number(0, 1, high_open=True, noun="a fraction",
                                                          note="0 reports the last epoch"), default=0.1,
                      help="share of the training data held out to choose the epoch")
    add_model_arguments(parser)
    add_training_arguments(parser)
    state_ranges(parser)
    args = parser.parse_args(argv)
    requires(parser, args, ["--validation_file", "--text_column_names", "--label_column_name", "--task_type"],
             not args.task_name, "with --train_file (a GLUE task has its own splits and columns)")
    if args.train_file:
        check_local_files(parser, args)
    check_model_arguments(parser, args)
    check_run_arguments(parser, args)
    return args


def check_local_files(parser: argparse.ArgumentParser, args) -> None:
    """Both files of one kind, with the columns asked for (read from their first row), before any work."""
    if not args.validation_file:
        parser.error("--train_file needs --validation_file")
    train_kind, validation_kind = file_kind(args.train_file), file_kind(args.validation_file)
    if train_kind != validation_kind:
        parser.error(f"--train_file and --validation_file must be of one kind (both csv or both json/jsonl): "
                     f"--train_file is {train_kind}, --validation_file is {validation_kind}")
    needed = args.text_column_names + [args.label_column_name]
    for option, path in (("--train_file", args.train_file), ("--validation_file", args.validation_file)):
        try:
            columns = first_row_columns(path)
        except UnicodeDecodeError as error:
            parser.error(f"{option} {path} is not UTF-8 text ({error.reason} at byte {error.start}): save it as UTF-8")
        missing = [column for column in needed if columns is not None and column not in columns]
        if missing:
            parser.error(f"{option} {path} has no column(s) {missing}; it has {columns}. Name the right ones with "
                         "--text_column_names / --label_column_name")


def file_kind(path: str) -> str:
    """How ``datasets`` reads a data file: "csv" or "json" (JSON or JSON lines)."""
    return "csv" if Path(path).suffix.lower() == ".csv" else "json"


def first_row_columns(path: str) -> list[str] | None:
    """A CSV file's header, or the keys of a JSON-lines file's first record; None where neither reads.
    A UTF-8 byte-order mark (as spreadsheet programs write one) is skipped."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        if Path(path).suffix.lower() == ".csv":
            return next(csv.reader(handle), [])
        first = handle.readline()
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return None  # one JSON document over many lines: the loader checks its columns
    return list(record) if isinstance(record, dict) else None


def load_splits(args):
    """(train, validation, text columns, task name or None) as ``datasets.Dataset`` objects."""
    import datasets

    if args.task_name:
        task = GLUE_TASKS[args.task_name]
        raw = datasets.load_dataset("nyu-mll/glue", args.task_name)
        return raw["train"], raw[task.validation_split], list(task.text_columns), "label", args.task_name
    # each file read on its own: read together, the validation file is cast to the training file's column
    # types, a traceback where its labels differ in kind (words against scores), which main names instead
    splits = [datasets.load_dataset(file_kind(path), data_files=path, split="train")
              for path in (args.train_file, args.validation_file)]  # parse_args checked both are one kind
    for split, path in zip(splits, (args.train_file, args.validation_file)):
        check_columns(split, args.text_column_names + [args.label_column_name], path)
    return splits[0], splits[1], args.text_column_names, args.label_column_name, None


def refuse(message: str) -> NoReturn:
    """Bad data found once the files are read: exit 2 with the message, as a bad option does."""
    print(f"text_classification.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def is_number(value) -> bool:
    """An int or float label; a bool (JSON's true/false) is a class name."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_labels(split, label_column: str, where: str) -> None:
    """Refuse rows without a label (an empty CSV cell, a JSON null or missing key), which would
    otherwise train as a class named "None"."""
    missing = sum(1 for v in split[label_column] if v is None or (isinstance(v, float) and math.isnan(v)))
    if missing:
        refuse(f"{where}: {missing} of {len(split)} row(s) have no value in the label column '{label_column}'; "
               "fill them in or remove those rows")


def label_scheme(train, label_column: str, task: str | None, task_type: str = "auto",
                 where: str = "the training data"):
    """(num_labels, label → id or None for regression, id2label).

    Every value counts: a score column holding a few whole numbers (STS-B's 0.0 and 5.0) is still a
    regression, which a look at some values only would have made a classifier of many classes.
    """
    if task is not None:
        spec = GLUE_TASKS[task]
        names = train.features[label_column].names if spec.num_labels > 1 and hasattr(
            train.features[label_column], "names") else None
        return spec.num_labels, None, dict(enumerate(names)) if names else None
    values = train.unique(label_column)
    numbers = all(is_number(v) for v in values)
    scores = numbers and any(not float(v).is_integer() for v in values)
    if task_type == "regression" or (task_type == "auto" and scores):
        bad = [v for v in values if not is_number(v) or not math.isfinite(v)]
        if bad:
            refuse(f"a regression needs numbers, but the label column '{label_column}' of {where} holds "
                   f"{bad[:5]}; --task_type classification treats them as classes")
        return 1, None, None
    labels = sorted(values, key=float) if numbers else sorted(values, key=str)
    if len(labels) < 2:
        refuse(f"the label column '{label_column}' of {where} holds one value only ({labels}); "
               "a classifier needs at least two classes")
    return len(labels), {label: i for i, label in enumerate(labels)}, {i: str(label) for i, label in enumerate(labels)}


def check_validation_labels(validation, label_column: str, label_ids: dict | None, where: str) -> None:
    """The evaluation labels must be of the training data's kind: numbers for a regression, its classes otherwise."""
    values = validation.unique(label_column)
    if label_ids is None:
        bad = [v for v in values if not is_number(v) or not math.isfinite(v)]
        if bad:
            refuse(f"the training data's labels are scores (a regression), but the label column '{label_column}' "
                   f"of {where} holds {bad[:5]}")
        return
    unseen = [v for v in values if v not in label_ids]
    if unseen:
        hint = " (scores? --task_type regression treats the column as one)" if all(map(is_number, values)) else ""
        refuse(f"the label column '{label_column}' of {where} holds value(s) the training data has no class for: "
               f"{unseen[:5]}{hint}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    train_raw, eval_raw, text_columns, label_column, task = load_splits(args)  # bad data fails before any writing
    if task is None:
        check_labels(train_raw, label_column, f"--train_file {args.train_file}")
        check_labels(eval_raw, label_column, f"--validation_file {args.validation_file}")
    if args.max_train_samples:
        train_raw = train_raw.select(range(min(args.max_train_samples, len(train_raw))))
    if args.max_eval_samples:
        eval_raw = eval_raw.select(range(min(args.max_eval_samples, len(eval_raw))))
    num_labels, label_ids, id2label = label_scheme(train_raw, label_column, task, args.task_type,
                                                   f"--train_file {args.train_file}")
    if task is None:
        check_validation_labels(eval_raw, label_column, label_ids, f"--validation_file {args.validation_file}")
    accelerator = start_run(args)
    overrides = {"num_labels": num_labels}
    if id2label:
        overrides.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    if num_labels == 1:
        overrides["problem_type"] = "regression"
    model, tokenizer = load_model(args, hf_learngene.AutoModelForSequenceClassification, accelerator, **overrides)

    def encode(batch):
        texts = [batch[c] for c in text_columns]
        encoded = tokenizer(*texts, truncation=True, max_length=args.max_length)
        labels = batch[label_column]
        encoded["labels"] = [float(v) for v in labels] if num_labels == 1 else \
            [label_ids[v] if label_ids else int(v) for v in labels]
        return encoded

    train_data = train_raw.map(encode, batched=True, remove_columns=train_raw.column_names)
    eval_data = eval_raw.map(encode, batched=True, remove_columns=eval_raw.column_names)
    selection_data = None
    if args.selection_fraction:
        parts = train_data.train_test_split(test_size=args.selection_fraction, seed=args.seed)
        train_data, selection_data = parts["train"], parts["test"]

    def collate(features):
        batch = tokenizer.pad([{k: v for k, v in f.items() if k != "labels"} for f in features], return_tensors="pt")
        batch["labels"] = torch.tensor([f["labels"] for f in features],
                                       dtype=torch.float32 if num_labels == 1 else torch.long)
        return batch

    def scorer(dataset):
        return lambda model, accelerator: score(model, accelerator, dataset)

    def score(model, accelerator, dataset):
        loader = accelerator.prepare_data_loader(torch.utils.data.DataLoader(
            dataset, batch_size=args.per_device_eval_batch_size, collate_fn=collate))
        model.eval()
        predictions, references = [], []
        with torch.no_grad():
            for batch in loader:
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                output = logits.squeeze(-1) if num_labels == 1 else logits.argmax(-1)
                output, labels = accelerator.gather_for_metrics((output, batch["labels"]))
                predictions += output.tolist()
                references += labels.tolist()
        model.train()
        if num_labels == 1:
            return glue_metrics("stsb", predictions, references)
        return glue_metrics(task, predictions, references)

    main_metric = {"cola": "matthews_correlation", "stsb": "pearson"}.get(task, "accuracy" if num_labels > 1 else "pearson")
    return train(args, accelerator, model, tokenizer, train_data, collate, scorer(eval_data), main_metric,
                 select=scorer(selection_data) if selection_data is not None else None)


if __name__ == "__main__":
    main()
