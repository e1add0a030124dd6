"""Fine-tune an extractive question-answering model on SQuAD v1.1 / v2.0 or local SQuAD files.

    # from the Hub (needs internet)
    accelerate launch recipes/question_answering.py --dataset_name squad_v2 --learngene me/minilm-front \\
        --size small --output_dir out/squad2
    # offline, on SQuAD-format JSON files
    python recipes/question_answering.py --train_file train-v1.1.json --validation_file dev-v1.1.json \\
        --model_name_or_path out/squad-small/last --output_dir out/squad-more

The standard processing: question and context are tokenised together; a context longer than
``--max_seq_length`` is cut into windows overlapping by ``--doc_stride`` tokens, each window
labelled with the answer's token span (or the [CLS] token when the answer lies outside it).
Predictions take, per question, the best-scoring span over all its windows (``--n_best_size``
start and end candidates, at most ``--max_answer_length`` tokens, inside the context); with SQuAD
v2.0 the empty answer wins when the [CLS] score beats the best span by
``--null_score_diff_threshold``. Exact match
and F1 use the official answer normalisation (``hf_learngene.metrics.squad``). The last epoch is
reported and kept in ``OUTPUT_DIR/last`` (no epoch is chosen on the evaluation set).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
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
    integer,
    number,
    positive_integer,
    requires,
    state_ranges,
)
from hf_learngene.metrics import squad_metrics  # noqa: E402

HUB_DATASETS = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}
COLUMNS = ["id", "question", "context", "answers"]
EXISTING_FILE = existing_file()


def _squad_file(text: str) -> str:
    """An existing file that starts as JSON does (SQuAD's {"data": ...}, a list of records, or JSON
    lines), whatever its suffix: read_squad_file tells the layouts apart by their content."""
    path = EXISTING_FILE.parse(text)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            start = handle.read(4096).lstrip()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if not start.startswith(("{", "[")):
        raise ValueError("not JSON")
    return path


SQUAD_FILE = ArgType("an existing SQuAD file, JSON or JSON lines", _squad_file)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset_name", choices=list(HUB_DATASETS), help="SQuAD v1.1 or v2.0 from the Hub")
    source.add_argument("--train_file", type=SQUAD_FILE,
                        help="SQuAD-format JSON (the official nested layout, or flat JSON lines)")
    data.add_argument("--validation_file", type=SQUAD_FILE, help="with --train_file: the evaluation data")
    data.add_argument("--version_2_with_negative", action="store_true",
                      help="questions may have no answer (set automatically for squad_v2 and is_impossible data)")
    data.add_argument("--max_seq_length", type=positive_integer, default=256,
                      help="tokens per window of question and context")
    data.add_argument("--doc_stride", type=integer(0), default=32,
                      help="tokens shared by consecutive windows; below half of --max_seq_length")
    data.add_argument("--n_best_size", type=positive_integer, default=20,
                      help="start and end candidates tried per window")
    data.add_argument("--max_answer_length", type=positive_integer, default=30, help="the longest answer, in tokens")
    data.add_argument("--null_score_diff_threshold", type=number(), default=0.0,
                      help="SQuAD v2.0: how far the no-answer score must beat the best span")
    data.add_argument("--max_train_samples", type=positive_integer, help="use only this many (default: all)")
    data.add_argument("--max_eval_samples", type=positive_integer, help="use only this many (default: all)")
    add_model_arguments(parser)
    add_training_arguments(parser, learning_rate=5e-5, num_train_epochs=2)
    state_ranges(parser)
    args = parser.parse_args(argv)
    if args.train_file and not args.validation_file:
        parser.error("--train_file needs --validation_file")
    requires(parser, args, ["--validation_file"], not args.dataset_name,
             f"with --train_file (--dataset_name {args.dataset_name} has its own)")
    if args.doc_stride >= args.max_seq_length // 2:
        parser.error(f"--doc_stride {args.doc_stride} must be below {args.max_seq_length // 2}, half of "
                     f"--max_seq_length {args.max_seq_length}")
    check_model_arguments(parser, args)
    check_run_arguments(parser, args)
    return args


def read_squad_file(path: str) -> tuple[list[dict], bool]:
    """Flat records (id, question, context, answers{text, answer_start}) and whether any is unanswerable."""
    file = Path(path)
    if not file.is_file():  # parse_args checks this; a Python caller may not
        raise SystemExit(f"data file {path} does not exist")
    text = file.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "data" in document:
        records, impossible = [], False
        for article in document["data"]:
            for paragraph in article.get("paragraphs", []):
                for qa in paragraph.get("qas", []):
                    answers = qa.get("answers", [])
                    impossible |= bool(qa.get("is_impossible")) or not answers
                    records.append({"id": str(qa["id"]), "question": qa["question"], "context": paragraph["context"],
                                    "answers": {"text": [a["text"] for a in answers],
                                                "answer_start": [int(a["answer_start"]) for a in answers]}})
        return records, impossible
    if isinstance(document, dict):  # a file of one JSON line
        document = [document]
    try:
        records = [json.loads(line) for line in text.splitlines() if line.strip()] if document is None else document
    except json.JSONDecodeError as error:
        raise SystemExit(f"{path} is neither SQuAD JSON ({{'data': [...]}}) nor JSON lines: {error}") from None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise SystemExit(f"{path}: expected SQuAD's {{'data': [...]}} layout or one question per JSON line")
    missing = [c for c in COLUMNS if c not in records[0]]
    if missing:
        raise SystemExit(f"{path} has no field(s) {missing}; it has {sorted(records[0])}")
    return records, any(not r["answers"]["text"] for r in records)


def load_splits(args):
    import datasets

    if args.dataset_name:
        raw = datasets.load_dataset(HUB_DATASETS[args.dataset_name])
        train_raw, eval_raw = raw["train"], raw["validation"]
        for split, name in ((train_raw, "train"), (eval_raw, "validation")):
            check_columns(split, COLUMNS, f"{args.dataset_name} {name}")
        return train_raw, eval_raw, args.dataset_name == "squad_v2" or args.version_2_with_negative
    (train_records, train_v2), (eval_records, eval_v2) = map(read_squad_file, (args.train_file, args.validation_file))
    return (datasets.Dataset.from_list(train_records), datasets.Dataset.from_list(eval_records),
            args.version_2_with_negative or train_v2 or eval_v2)


def train_features(examples, tokenizer, args):
    """Windows over each context, labelled with the answer's token span or [CLS] (index 0)."""
    encoded = tokenizer(examples["question"], examples["context"], truncation="only_second",
                        max_length=args.max_seq_length, stride=args.doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding="max_length")
    starts, ends = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        answers = examples["answers"][encoded["overflow_to_sample_mapping"][i]]
        sequence = encoded.sequence_ids(i)
        if not answers["text"]:
            starts.append(0), ends.append(0)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        context = [j for j, s in enumerate(sequence) if s == 1]
        first, last = context[0], context[-1]
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            starts.append(0), ends.append(0)  # the answer is not inside this window
            continue
        start = next(j for j in range(first, last + 1) if offsets[j][1] > start_char)
        end = next(j for j in range(last, first - 1, -1) if offsets[j][0] < end_char)
        starts.append(start), ends.append(end)
    encoded["start_positions"], encoded["end_positions"] = starts, ends
    encoded.pop("offset_mapping")
    encoded.pop("overflow_to_sample_mapping")
    return encoded


def eval_features(examples, tokenizer, args):
    """Windows with their example id and offsets (None outside the context) for post-processing."""
    encoded = tokenizer(examples["question"], examples["context"], truncation="only_second",
                        max_length=args.max_seq_length, stride=args.doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding="max_length")
    encoded["example_id"] = [examples["id"][k] for k in encoded["overflow_to_sample_mapping"]]
    encoded["offset_mapping"] = [[o if s == 1 else None for o, s in zip(offsets, encoded.sequence_ids(i))]
                                 for i, offsets in enumerate(encoded["offset_mapping"])]
    encoded.pop("overflow_to_sample_mapping")
    return encoded


def best_answers(examples, features, start_logits, end_logits, args, with_negative: bool) -> dict[str, str]:
    """Per question, the best span over all of its windows (or "" when no answer wins under v2.0)."""
    windows = defaultdict(list)
    for index, example_id in enumerate(features["example_id"]):
        windows[example_id].append(index)
    predictions = {}
    for example in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for index in windows[example["id"]]:
            starts, ends, offsets = start_logits[index], end_logits[index], features["offset_mapping"][index]
            null_score = min(null_score, starts[0] + ends[0])
            for s in np.argsort(starts)[-args.n_best_size:][::-1]:
                for e in np.argsort(ends)[-args.n_best_size:][::-1]:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > args.max_answer_length:
                        continue
                    score = starts[s] + ends[e]
                    if score > best_score:
                        best_score = score
                        best_text = example["context"][offsets[s][0] : offsets[e][1]]
        if with_negative and null_score > best_score + args.null_score_diff_threshold:
            best_text = ""
        predictions[example["id"]] = best_text
    return predictions


def main(argv=None) -> dict:
    args = parse_args(argv)
    train_raw, eval_raw, with_negative = load_splits(args)  # bad data fails before any writing
    accelerator = start_run(args)
    if args.max_train_samples:
        train_raw = train_raw.select(range(min(args.max_train_samples, len(train_raw))))
    if args.max_eval_samples:
        eval_raw = eval_raw.select(range(min(args.max_eval_samples, len(eval_raw))))
    model, tokenizer = load_model(args, hf_learngene.AutoModelForQuestionAnswering, accelerator)
    if not getattr(tokenizer, "is_fast", False):
        raise SystemExit("question answering needs a fast tokenizer (offset mappings); this one is not")
    train_data = train_raw.map(train_features, batched=True, remove_columns=train_raw.column_names,
                               fn_kwargs={"tokenizer": tokenizer, "args": args})
    features = eval_raw.map(eval_features, batched=True, remove_columns=eval_raw.column_names,
                            fn_kwargs={"tokenizer": tokenizer, "args": args})
    model_inputs = [c for c in features.column_names if c not in ("example_id", "offset_mapping")]

    def collate(items):
        return {k: torch.tensor([item[k] for item in items]) for k in items[0]}

    def evaluate(model, accelerator):
        loader = accelerator.prepare_data_loader(torch.utils.data.DataLoader(
            features.select_columns(model_inputs), batch_size=args.per_device_eval_batch_size,
            collate_fn=collate))
        model.eval()
        starts, ends = [], []
        with torch.no_grad():
            for batch in loader:
                output = model(**batch)
                start, end = accelerator.gather_for_metrics((output.start_logits, output.end_logits))
                starts.append(start.float().cpu().numpy())
                ends.append(end.float().cpu().numpy())
        model.train()
        predictions = best_answers(eval_raw, features, np.concatenate(starts), np.concatenate(ends), args,
                                   with_negative)
        references = {example["id"]: example["answers"]["text"] for example in eval_raw}
        return squad_metrics(predictions, references)

    return train(args, accelerator, model, tokenizer, train_data, collate, evaluate, main_metric="f1")


if __name__ == "__main__":
    main()
