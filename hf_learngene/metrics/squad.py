"""SQuAD v1.1 and v2.0 exact match and F1 with the official answer normalisation.

Normalisation lower-cases, drops punctuation and the articles *a*, *an*, *the*, and collapses
whitespace. Each prediction is scored against every gold answer and keeps the best. For v2.0 a
question with no gold answer counts as right only when the prediction is empty, and the scores
are also reported for answerable (``HasAns``) and unanswerable (``NoAns``) questions apart.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:  # a no-answer on either side: right only if both are empty
        return float(predicted == expected)
    common = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """``exact`` and ``f1`` in percent over ``references`` (question id → gold answer texts; an
    empty list marks an unanswerable v2.0 question), with HasAns/NoAns splits when both occur."""
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} question(s), e.g. {missing[:3]}")
    scores = {}
    for qid, golds in references.items():
        golds = [g for g in golds if normalize_answer(g)] or [""]
        scores[qid] = (max(exact_match(predictions[qid], g) for g in golds),
                       max(token_f1(predictions[qid], g) for g in golds))
    result = _average(scores, list(references))
    has_answer = [qid for qid, golds in references.items() if any(normalize_answer(g) for g in golds)]
    no_answer = [qid for qid in references if qid not in set(has_answer)]
    if has_answer and no_answer:
        for prefix, ids in (("HasAns", has_answer), ("NoAns", no_answer)):
            part = _average(scores, ids)
            result.update({f"{prefix}_exact": part["exact"], f"{prefix}_f1": part["f1"], f"{prefix}_total": len(ids)})
    return result


def _average(scores: Mapping[str, tuple[float, float]], ids: Sequence[str]) -> dict[str, float]:
    return {"exact": 100.0 * sum(scores[i][0] for i in ids) / len(ids),
            "f1": 100.0 * sum(scores[i][1] for i in ids) / len(ids), "total": len(ids)}
