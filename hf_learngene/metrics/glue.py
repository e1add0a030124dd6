"""GLUE's nine tasks and their official metrics, as plain functions of predictions and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.stats


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float((predictions == labels).mean())


def f1_binary(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the positive class (GLUE's F1 for MRPC and QQP): 2·tp / (2·tp + fp + fn); 0 when there
    are no positives at all, as scikit-learn's ``f1_score`` (which GLUE uses) gives with a warning."""
    predictions, labels = np.asarray(predictions) == positive, np.asarray(labels) == positive
    true_positive = float((predictions & labels).sum())
    denominator = float(predictions.sum() + labels.sum())
    return 0.0 if denominator == 0 else 2 * true_positive / denominator


def matthews_correlation(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation of 0/1 predictions and labels (CoLA), the Pearson correlation of the two;
    0 when a row or column of the confusion matrix is empty, as scikit-learn's (GLUE's) gives."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    for name, values in (("predictions", predictions), ("labels", labels)):
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"matthews_correlation takes 0/1 {name}; got the values {sorted(set(values.tolist()))}")
    tp = float(((predictions == 1) & (labels == 1)).sum())
    tn = float(((predictions == 0) & (labels == 0)).sum())
    fp = float(((predictions == 1) & (labels == 0)).sum())
    fn = float(((predictions == 0) & (labels == 1)).sum())
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator)


def pearson(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Pearson's r (STS-B), by ``scipy.stats.pearsonr`` as GLUE's official metric computes it.

    ``nan`` (with scipy's ``ConstantInputWarning``) when either side is constant, e.g. a regression
    head that predicts one value: the correlation is undefined there, and GLUE reports ``nan`` too.
    """
    return float(scipy.stats.pearsonr(np.asarray(predictions, dtype=np.float64),
                                      np.asarray(labels, dtype=np.float64)).statistic)


def spearman(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Spearman's rank correlation (STS-B; ties take their mean rank), by ``scipy.stats.spearmanr``;
    ``nan`` when either side is constant, as for :func:`pearson`."""
    return float(scipy.stats.spearmanr(np.asarray(predictions, dtype=np.float64),
                                       np.asarray(labels, dtype=np.float64)).statistic)


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
