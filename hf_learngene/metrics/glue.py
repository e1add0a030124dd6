"""GLUE's nine tasks and their official metrics, as plain functions of predictions and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float((predictions == labels).mean())


def f1_binary(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the positive class (GLUE's F1 for MRPC and QQP)."""
    predictions, labels = np.asarray(predictions) == positive, np.asarray(labels) == positive
    true_positive = float((predictions & labels).sum())
    denominator = float(predictions.sum() + labels.sum())
    return 0.0 if denominator == 0 else 2 * true_positive / denominator


def matthews_correlation(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation (CoLA); 0 when a row or column of the confusion matrix is empty."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    tp = float(((predictions == 1) & (labels == 1)).sum())
    tn = float(((predictions == 0) & (labels == 0)).sum())
    fp = float(((predictions == 1) & (labels == 0)).sum())
    fn = float(((predictions == 0) & (labels == 1)).sum())
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator)


def pearson(predictions: Sequence[float], labels: Sequence[float]) -> float:
    x, y = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return 0.0 if denominator == 0 else float((x * y).sum() / denominator)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1  # ties share their mean rank
        start = end + 1
    return ranks


def spearman(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson of average ranks, ties included)."""
    return pearson(_average_ranks(np.asarray(predictions, dtype=np.float64)),
                   _average_ranks(np.asarray(labels, dtype=np.float64)))


METRIC_FUNCTIONS = {"accuracy": accuracy, "f1": f1_binary, "matthews_correlation": matthews_correlation,
                    "pearson": pearson, "spearmanr": spearman}


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task as the ``glue`` dataset on the Hub lays it out."""

    text_columns: tuple[str, ...]
    num_labels: int  # 1 = regression
    metrics: tuple[str, ...]
    validation_split: str = "validation"


GLUE_TASKS: dict[str, GlueTask] = {
    "cola": GlueTask(("sentence",), 2, ("matthews_correlation",)),
    "sst2": GlueTask(("sentence",), 2, ("accuracy",)),
    "mrpc": GlueTask(("sentence1", "sentence2"), 2, ("accuracy", "f1")),
    "qqp": GlueTask(("question1", "question2"), 2, ("accuracy", "f1")),
    "stsb": GlueTask(("sentence1", "sentence2"), 1, ("pearson", "spearmanr")),
    "mnli": GlueTask(("premise", "hypothesis"), 3, ("accuracy",), "validation_matched"),
    "qnli": GlueTask(("question", "sentence"), 2, ("accuracy",)),
    "rte": GlueTask(("sentence1", "sentence2"), 2, ("accuracy",)),
    "wnli": GlueTask(("sentence1", "sentence2"), 2, ("accuracy",)),
}


def glue_metrics(task: str | None, predictions, labels) -> dict[str, float]:
    """The task's official metrics (accuracy for a task outside GLUE, e.g. local files)."""
    names = GLUE_TASKS[task].metrics if task in GLUE_TASKS else ("accuracy",)
    return {name: METRIC_FUNCTIONS[name](predictions, labels) for name in names}
