"""The recipes' metrics against hand-checked cases, closed forms and scipy."""

import math

import numpy as np
import pytest
import scipy.stats

from hf_learngene.metrics import (
    GLUE_TASKS,
    accuracy,
    exact_match,
    f1_binary,
    glue_metrics,
    matthews_correlation,
    normalize_answer,
    pearson,
    spearman,
    squad_metrics,
    token_f1,
)

PREDICTIONS, LABELS = [1, 0, 1, 1], [1, 1, 1, 0]  # tp 2, tn 0, fp 1, fn 1


def test_classification_metrics():
    assert accuracy(PREDICTIONS, LABELS) == 0.5
    assert f1_binary(PREDICTIONS, LABELS) == pytest.approx(2 / 3)  # 2·2 / (3 + 3)
    assert matthews_correlation(PREDICTIONS, LABELS) == pytest.approx(-1 / 3)  # (0·2 − 1·1) / √(3·3·1·1)
    assert matthews_correlation([1, 1, 1], [1, 0, 1]) == 0.0  # an empty column: defined as 0


def test_correlations():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 − 6·2 / (4·15)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / 22.5 ** 0.5)  # tied ranks 2.5, 2.5


def test_correlations_match_scipy_on_data_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(3, 60))
        predictions = np.round(rng.normal(size=n), 1)  # rounding makes ties
        labels = rng.integers(0, 6, size=n) + 0.5 * rng.integers(0, 2, size=n)  # STS-B-like 0…5 in halves
        assert pearson(predictions, labels) == pytest.approx(scipy.stats.pearsonr(predictions, labels)[0], abs=1e-12)
        assert spearman(predictions, labels) == pytest.approx(scipy.stats.spearmanr(predictions, labels)[0], abs=1e-12)


def test_constant_predictions_have_no_correlation():
    """GLUE's official metric (scipy) gives nan for a constant side, not 0: the correlation is undefined."""
    with pytest.warns(scipy.stats.ConstantInputWarning):
        assert math.isnan(pearson([2.0, 2.0, 2.0], [1.0, 2.0, 4.5]))
    with pytest.warns(scipy.stats.ConstantInputWarning):
        assert math.isnan(spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]))
    with pytest.warns(scipy.stats.ConstantInputWarning):
        scores = glue_metrics("stsb", [3.0] * 4, [0.5, 1.0, 2.0, 4.0])
    assert math.isnan(scores["pearson"]) and math.isnan(scores["spearmanr"])


def test_classification_metrics_match_closed_forms_and_scipy():
    rng = np.random.default_rng(1)
    for trial in range(20):
        n = int(rng.integers(4, 80))
        predictions, labels = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
        predictions[:2], labels[:2] = [0, 1], [1, 0]  # both classes on each side: MCC is defined
        tp = sum(int(p == 1 and y == 1) for p, y in zip(predictions, labels))
        fp = sum(int(p == 1 and y == 0) for p, y in zip(predictions, labels))
        fn = sum(int(p == 0 and y == 1) for p, y in zip(predictions, labels))
        assert accuracy(predictions, labels) == pytest.approx(sum(predictions == labels) / n)
        assert f1_binary(predictions, labels) == pytest.approx(2 * tp / (2 * tp + fp + fn))
        # binary MCC is the phi coefficient: Pearson's r of the two 0/1 vectors
        assert matthews_correlation(predictions, labels) == pytest.approx(scipy.stats.pearsonr(predictions, labels)[0])
    assert f1_binary([0, 0], [0, 0]) == 0.0  # no positives anywhere: 0, as scikit-learn's f1_score gives


def test_matthews_correlation_takes_binary_labels():
    with pytest.raises(ValueError, match="0/1 labels; got the values \\[0, 1, 2\\]"):
        matthews_correlation([0, 1, 1], [0, 1, 2])


def test_every_glue_task_has_its_official_metrics():
    assert len(GLUE_TASKS) == 9
    assert set(glue_metrics("mrpc", PREDICTIONS, LABELS)) == {"accuracy", "f1"}
    assert set(glue_metrics("cola", PREDICTIONS, LABELS)) == {"matthews_correlation"}
    assert set(glue_metrics("stsb", [0.1, 0.5, 0.9], [1.0, 2.0, 4.5])) == {"pearson", "spearmanr"}
    assert glue_metrics(None, PREDICTIONS, LABELS) == {"accuracy": 0.5}


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Cat's hat!") == "cats hat"
    assert exact_match("the cat", "Cat") == 1.0
    assert token_f1("the big cat sat", "a cat sat down") == pytest.approx(2 / 3)  # P = R = 2/3
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_squad_v1_takes_the_best_gold_answer():
    result = squad_metrics({"q1": "Denver Broncos", "q2": "1990"},
                           {"q1": ["Denver Broncos", "The Broncos"], "q2": ["in 1991"]})
    assert result == {"exact": 50.0, "f1": 50.0, "total": 2}


def test_squad_v2_no_answer_handling():
    result = squad_metrics({"q1": "Broncos", "q2": "", "q3": "something"},
                           {"q1": ["the Broncos"], "q2": [], "q3": [""]})
    assert result["exact"] == pytest.approx(200 / 3)
    assert (result["HasAns_exact"], result["HasAns_total"]) == (100.0, 1)
    assert (result["NoAns_exact"], result["NoAns_total"]) == (50.0, 2)
    with pytest.raises(ValueError, match="no prediction for 1 question"):
        squad_metrics({}, {"q1": ["x"]})
