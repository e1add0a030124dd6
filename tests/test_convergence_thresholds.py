"""The convergence benchmark's arithmetic on hand-made curves: thresholds along random init's curve,
steps to reach them, steps saved (and "not reached"), the unigram plateau, and the table."""

import math

import pytest
import torch

import convergence

STEPS = 100
# random init: eval every 10 steps, 25% of the budget falls between evaluations (25 -> step 30)
RANDOM = [(0, 10.0), (10, 8.0), (20, 7.5), (30, 7.0), (40, 6.8), (50, 6.6), (60, 6.5), (70, 6.45), (80, 6.4),
          (90, 6.35), (100, 6.3)]
# reaches random's early losses sooner but stalls above its final loss (only reaches the plateau sooner)
PLATEAU_ONLY = [(0, 9.0), (10, 6.9), (20, 6.6), (30, 6.5), (40, 6.45), (50, 6.42), (60, 6.41), (70, 6.4), (80, 6.4),
                (90, 6.4), (100, 6.4)]
# gets below random's final loss at step 20
FAST = [(0, 9.0), (10, 7.0), (20, 6.3), (30, 6.0), (40, 5.9), (50, 5.8), (60, 5.7), (70, 5.6), (80, 5.5),
        (90, 5.4), (100, 5.3)]
# never gets below random's 25% loss
SLOW = [(step, 8.0) for step, _ in RANDOM]


def rows(*curves):
    made = [{"method": name, "applicable": True, "curve": curve} for name, curve in curves]
    return made + [{"method": "stack", "applicable": False, "reason": "cannot"}]


def by_fraction(row):
    return {t["fraction"]: (t["steps"], t["saved"]) for t in row["thresholds"]}


def test_thresholds_are_random_init_losses_at_the_first_evaluation_at_or_after_each_fraction():
    thresholds = convergence.random_thresholds(RANDOM, STEPS, (0.25, 0.5, 1.0))
    assert [(t["fraction"], t["step"], t["level"], t["random_steps"]) for t in thresholds] == [
        (0.25, 30, 7.0, 30), (0.5, 50, 6.6, 50), (1.0, 100, 6.3, 100)]


def test_steps_saved_per_threshold_not_reached_and_plateau_only():
    table = rows(("random", RANDOM), ("plateau only", PLATEAU_ONLY), ("fast", FAST), ("slow", SLOW))
    convergence.add_thresholds(table, STEPS, (0.25, 0.5, 1.0))
    random, plateau_only, fast, slow, stack = table
    assert by_fraction(random) == {0.25: (30, 0.0), 0.5: (50, 0.0), 1.0: (100, 0.0)}
    # saves at 25% and 50% but never reaches random's final loss
    assert by_fraction(plateau_only)[0.25] == (10, pytest.approx(1 - 10 / 30))
    assert by_fraction(plateau_only)[0.5] == (20, pytest.approx(1 - 20 / 50))
    assert by_fraction(plateau_only)[1.0] == (None, None)
    assert plateau_only["steps_to_random_final"] is None and plateau_only["steps_saved"] is None
    assert by_fraction(fast) == {0.25: (10, pytest.approx(2 / 3)), 0.5: (20, pytest.approx(0.6)),
                                 1.0: (20, pytest.approx(0.8))}
    assert fast["steps_to_random_final"] == 20 and fast["steps_saved"] == pytest.approx(0.8)
    assert by_fraction(slow) == {0.25: (None, None), 0.5: (None, None), 1.0: (None, None)}
    assert "thresholds" not in stack


def test_savings_count_against_random_inits_own_first_step_to_the_loss():
    """Random init dips to 6.55 at step 40, below its step-50 loss 6.6: that loss was random's at step 40,
    so a method reaching it at step 40 saves nothing and random itself saves nothing either."""
    dipping = [(s, 6.55 if s == 40 else v) for s, v in RANDOM]
    method = [(s, 6.6 if s == 40 else 9.0) for s, _ in RANDOM]
    table = rows(("random", dipping), ("method", method))
    thresholds = convergence.add_thresholds(table, STEPS, (0.5,))
    assert (thresholds[0]["step"], thresholds[0]["level"], thresholds[0]["random_steps"]) == (50, 6.6, 40)
    assert by_fraction(table[0]) == {0.5: (40, 0.0)}
    assert by_fraction(table[1]) == {0.5: (40, 0.0)}


def test_a_fraction_outside_the_budget_is_refused():
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            convergence.random_thresholds(RANDOM, STEPS, (fraction,))


def test_unigram_plateau_on_a_tiny_case():
    # training tokens 0, 0, 1, 2 over a vocabulary of 4: add-one counts 3, 2, 2, 1 of 8
    train = torch.tensor([[0, 0], [1, 2]])
    heldout = torch.tensor([[0, -100], [3, 1]])
    expected = -(math.log(3 / 8) + math.log(1 / 8) + math.log(2 / 8)) / 3
    assert convergence.unigram_plateau(train, heldout, vocab_size=4) == pytest.approx(expected)
    # a held-out set of the most frequent token only costs less than one of unseen tokens
    assert convergence.unigram_plateau(train, torch.tensor([0, 0]), 4) < convergence.unigram_plateau(
        train, torch.tensor([3, 3]), 4)


def test_the_table_has_a_column_per_threshold_with_not_reached():
    table = rows(("random", RANDOM), ("plateau only", PLATEAU_ONLY))
    for row in table[:2]:
        row.update(final_loss=row["curve"][-1][1], learngene_bytes=0, downstream_accuracy=None)
    thresholds = convergence.add_thresholds(table, STEPS, (0.25, 0.5, 1.0))
    results = {"shrink 3L/192/3H": {"target": {}, "lr": 1e-3, "lr_sweep": [
        {"lr": 3e-4, "final_loss": 6.9, "curve": []}, {"lr": 1e-3, "final_loss": 6.3, "curve": []}],
        "thresholds": thresholds, "random_below_unigram_plateau": True, "rows": table}}
    settings = convergence.Settings(steps=STEPS, lr=None, lr_sweep=(3e-4, 1e-3), finetune_steps=0)
    text = convergence.markdown_table(results, settings, plateau=6.5)
    assert "| reach 25% | reach 50% | reach random's final |" in text
    assert "| shrink 3L/192/3H | plateau only | 0.001 | 0 | 6.400 | 10 (67%) | 20 (60%) | not reached | – |" in text
    assert "| shrink 3L/192/3H | stack | – | – | n/a | n/a | n/a | n/a | n/a |" in text
    assert "the same lr for every method: random init's best" in text
    assert "| shrink 3L/192/3H | 6.900 | 6.300* | yes |" in text
    assert "6.500" in text  # the plateau
