"""The recipes' metrics against hand-checked cases."""

import pytest

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
