"""The convergence benchmark's composed peers: which chains apply to which targets, and that a
chain builds the target's size from MiniLM through the sizes it plans."""

import pytest

import convergence


def test_plans_of_the_grow_targets():
    grow_768 = convergence.TARGETS["grow 12L/768/12H"]
    assert convergence.composed_plan("hypercloning+stack", grow_768) == [
        ("hypercloning", {"layers": 6, "hidden": 768, "heads": 12}), ("stack", grow_768)]
    grow_512 = convergence.TARGETS["grow 8L/512/8H"]
    assert convergence.composed_plan("hypercloning+stack+weight_selection", grow_512) == [
        ("hypercloning", {"layers": 6, "hidden": 768, "heads": 12}),
        ("stack", {"layers": 8, "hidden": 768, "heads": 12}), ("weight_selection", grow_512)]


@pytest.mark.parametrize("method, target, reason", [
    ("hypercloning+stack", "grow 8L/512/8H", "not a whole multiple"),
    ("hypercloning+stack", "grow width 6L/768/24H", "hypercloning alone"),
    ("hypercloning+stack", "grow depth 12L/384/12H", "stack alone"),
    ("hypercloning+stack", "shrink 4L/256/4H", "not a whole multiple"),
    ("hypercloning+stack+weight_selection", "grow 12L/768/12H", "whole multiple"),
    ("hypercloning+stack+weight_selection", "shrink 3L/192/3H", "or smaller"),
])
def test_chains_that_do_not_apply_say_why(method, target, reason):
    assert reason in convergence.composed_plan(method, convergence.TARGETS[target])
    model, refusal, _ = convergence.build_model(method, convergence.TARGETS[target], convergence.QUICK)
    assert model is None and reason in refusal


def test_hypercloning_stack_selection_builds_8L_512_8H():
    target = convergence.TARGETS["grow 8L/512/8H"]
    model, refusal, stored_bytes = convergence.build_model("hypercloning+stack+weight_selection", target,
                                                           convergence.QUICK)
    assert refusal is None and stored_bytes > 0
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (8, 512, 8)
    assert config.intermediate_size == 2048


def test_method_variants_label_front_keeps_and_bot_schemes_in_full():
    """Every FRONT and BoT run is labelled by all the options that tell runs apart, whatever the
    report holds, so rows of several reports never share a label for different runs."""
    settings = convergence.Settings(front_keeps=(1.0, 0.5), bot_schemes=("split", "linear"),
                                    bot_shrinks=("units", "wavelet"))
    assert convergence.method_variants(("random", "front", "bot"), settings) == [
        ("random", {}, "random"), ("front", {"keep": 1.0}, "front (keep 1)"), ("front", {"keep": 0.5}, "front (keep 0.5)"),
        ("bot", {"non_dyadic": "split", "shrink": "units"}, "bot (split, units)"),
        ("bot", {"non_dyadic": "split", "shrink": "wavelet"}, "bot (split, wavelet)"),
        ("bot", {"non_dyadic": "linear", "shrink": "units"}, "bot (linear, units)"),
        ("bot", {"non_dyadic": "linear", "shrink": "wavelet"}, "bot (linear, wavelet)")]
    assert convergence.method_variants(("front", "bot"), convergence.QUICK) == [
        ("front", {"keep": 1.0}, "front (keep 1)"), ("bot", {"non_dyadic": "split", "shrink": "units"}, "bot (split, units)")]
