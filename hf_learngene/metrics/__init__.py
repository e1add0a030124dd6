"""Evaluation metrics the recipes need, computed locally (``evaluate`` cannot fetch its metric
scripts offline): GLUE's official metrics and SQuAD's exact match and F1."""

from .glue import GLUE_TASKS, GlueTask, accuracy, f1_binary, glue_metrics, matthews_correlation, pearson, spearman
from .squad import exact_match, normalize_answer, squad_metrics, token_f1

__all__ = [
    "GLUE_TASKS",
    "GlueTask",
    "accuracy",
    "exact_match",
    "f1_binary",
    "glue_metrics",
    "matthews_correlation",
    "normalize_answer",
    "pearson",
    "spearman",
    "squad_metrics",
    "token_f1",
]
