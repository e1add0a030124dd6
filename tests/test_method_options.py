"""Every method's options declared once (hf_learngene/methods/options.py): the declarations agree
with the methods, and the CLI flags and model card rows come from them."""

import argparse
import dataclasses
import inspect

import pytest

from hf_learngene import Learngene, LearngeneConfigError
from hf_learngene.cli import main
from hf_learngene.methods import METHODS, get_method
from hf_learngene.methods.options import (
    METHOD_OPTIONS,
    HyperCloningOptions,
    StackOptions,
    add_option_arguments,
    method_options,
    options_from_arguments,
)
from hf_learngene.model_cards import learngene_card

from conftest import tiny_config, tiny_model


@pytest.mark.parametrize("method", list(METHODS))
def test_each_declaration_matches_its_method(method):
    """Same names as the method's constructor, whose defaults are read from the declaration, and the
    method keeps what it is given."""
    options = METHOD_OPTIONS[method]()
    parameters = inspect.signature(METHODS[method].__init__).parameters
    declared = {option.name: option.default for option in dataclasses.fields(options)}
    taken = {name: p.default for name, p in parameters.items() if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}
    assert declared == taken
    assert get_method(method, **dataclasses.asdict(options)).options() == dataclasses.asdict(options)
    assert all(option.metadata["help"] for option in dataclasses.fields(options))


def test_flags_are_made_from_the_declarations():
    parser = argparse.ArgumentParser()
    add_option_arguments(parser, list(METHODS), dashes=True)
    arguments = parser.parse_args(["--snr-db", "20", "--seed", "3"])
    assert options_from_arguments("hypercloning", arguments, list(METHODS)) == HyperCloningOptions(snr_db=20.0, seed=3)
    arguments = parser.parse_args(["--identity-copies", "--order", "repeat"])
    assert options_from_arguments("stack", arguments, list(METHODS)) == StackOptions("repeat", identity_copies=True)
    assert options_from_arguments("front", parser.parse_args([]), list(METHODS)) == method_options("front")
    with pytest.raises(LearngeneConfigError, match="--wavelet: not an option of --method front;"):
        options_from_arguments("front", parser.parse_args(["--wavelet", "db2"]), list(METHODS), dashes=True)
    with pytest.raises(SystemExit):  # choices come from the methods' own lists
        parser.parse_args(["--order", "shuffle"])
    with pytest.raises(LearngeneConfigError, match="wavelet: not an option of front"):
        method_options("front", {"wavelet": "db2"})


def test_the_cli_passes_a_methods_options_through(tmp_path, capsys):
    tiny_model(tiny_config("bert", layers=2, heads=2, head_dim=4, intermediate=16)).save_pretrained(tmp_path / "bert")
    assert main(["extract", str(tmp_path / "bert"), "--method", "hypercloning", "--snr-db", "20", "--seed", "3",
                 "--out", str(tmp_path / "lg")]) == 0
    assert Learngene.from_pretrained(tmp_path / "lg").config.method_options == {"snr_db": 20.0, "seed": 3}
    assert main(["extract", str(tmp_path / "bert"), "--method", "front", "--levels", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--levels: not an option of --method front" in capsys.readouterr().err


def test_the_card_lists_the_options_with_their_help(tmp_path):
    source = tiny_model(tiny_config("bert", layers=2, heads=2, head_dim=4, intermediate=16))
    card = learngene_card(Learngene.extract(source, method="bot", levels=1, show_progress=False), "me/tiny-bot")
    assert "A **BoT (wavelet) learngene**" in card.text
    assert "| `levels` | `1` | decomposition levels stored; each halves every resizable axis |" in card.text
    assert "| `wavelet` | `\"haar\"` |" in card.text
    random = learngene_card(Learngene.extract(source, method="random", show_progress=False), "me/tiny-random")
    assert "this method has no options" in random.text and "random init (baseline)" in random.text
