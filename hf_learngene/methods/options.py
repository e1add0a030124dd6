"""Every method's options, declared once, as peft declares an adapter's (``LoraConfig``).

One dataclass per method holds each option's default and help. Command-line flags
(``hf-learngene extract``, the recipes) and model card fields are made from these declarations,
so a new option is added in one place. A method receives its options as keyword arguments:

    options = FrontOptions(keep=0.5)
    learngene = Learngene.extract(source, method=options.method, **dataclasses.asdict(options))
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

import pywt

from ..cli_types import ArgType, integer, number
from ..cli_types import seed as seed_type
from ..errors import LearngeneConfigError

# the choices of the options that take one word; the methods check against these same tuples
ORDERS = ("interleave", "repeat")  # stack: how source blocks repeat in a deeper model
LAYER_CHOICES = ("first", "uniform")  # weight selection: which blocks a shallower model keeps
NON_DYADIC = ("split", "linear")  # BoT: how the part of a ratio that is not a power of two is done
SHRINK_SCHEMES = ("units", "wavelet")  # BoT: how a narrower model takes its units


def _orthogonal(text: str) -> str:
    """A wavelet BoT can use, checked on the command line before any extraction."""
    if text not in pywt.wavelist(kind="discrete") or not pywt.Wavelet(text).orthogonal:
        raise ValueError("not an orthogonal discrete wavelet")
    return text


@dataclass
class MethodOptions:
    """What every method's options share: the method's name and its title on model cards."""

    method: ClassVar[str]
    title: ClassVar[str]


@dataclass
class FrontOptions(MethodOptions):
    """FRONT: the learngene stores the low-frequency block of each role's DCT."""

    method: ClassVar[str] = "front"
    title: ClassVar[str] = "FRONT (DCT)"

    keep: Union[float, dict[str, Union[float, int]]] = field(
        default=1.0,
        metadata={"help": "DCT coefficients kept per resizable axis: a ratio in (0, 1], or (in Python) a dict of "
                          "axis name to ratio or count", "cli_type": number(0, 1, low_open=True, noun="a ratio")},
    )


@dataclass
class BotOptions(MethodOptions):
    """BoT: the learngene stores the approximation band of each role's wavelet decomposition."""

    method: ClassVar[str] = "bot"
    title: ClassVar[str] = "BoT (wavelet)"

    wavelet: str = field(default="haar", metadata={"help": "an orthogonal PyWavelets wavelet",
                                                   "cli_type": ArgType("an orthogonal wavelet: haar, db1-db38, "
                                                                       "sym2-sym20, coif1-coif17 or dmey",
                                                                       _orthogonal)})
    levels: int = field(default=0, metadata={"help": "decomposition levels stored; each halves every resizable axis",
                                             "cli_type": integer(0, zero="the source's full size")})
    non_dyadic: str = field(default="split", metadata={
        "help": "the part of a ratio that is not a power of two: split copies or drops whole units (keeps the "
                "function when growing), linear interpolates between neighbouring units",
        "choices": NON_DYADIC})
    shrink: str = field(default="units", metadata={
        "help": "how a narrower model takes its units: units keeps whole ones (the residual units the norms scale "
                "most, evenly spread ones on the other axes), wavelet low-passes neighbouring ones (the paper)",
        "choices": SHRINK_SCHEMES})


@dataclass
class WeightSelectionOptions(MethodOptions):
    """Weight selection: a smaller model takes evenly spaced elements of the larger one."""

    method: ClassVar[str] = "weight_selection"
    title: ClassVar[str] = "weight selection"

    layers: str = field(default="first", metadata={"help": "which blocks a shallower model keeps",
                                                   "choices": LAYER_CHOICES})


@dataclass
class HyperCloningOptions(MethodOptions):
    """HyperCloning: width grown by whole factors, computing the source's function."""

    method: ClassVar[str] = "hypercloning"
    title: ClassVar[str] = "HyperCloning"

    snr_db: Union[float, None] = field(
        default=None, metadata={"help": "signal-to-noise ratio (dB) of noise that breaks the copies' symmetry; "
                                        "no noise when unset", "cli_type": number(noun="a number of dB")})
    seed: int = field(default=0, metadata={"help": "seed of that noise", "cli_type": seed_type})


@dataclass
class StackOptions(MethodOptions):
    """Stacking: depth grown by duplicating blocks."""

    method: ClassVar[str] = "stack"
    title: ClassVar[str] = "depth stacking"

    order: str = field(default="interleave", metadata={"help": "interleave (1 1 2 2) or repeat (1 2 1 2) the blocks",
                                                       "choices": ORDERS})
    identity_copies: bool = field(default=False,
                                  metadata={"help": "zero the output projections of inserted copies (identities)"})


@dataclass
class RandomInitOptions(MethodOptions):
    """The baseline: the target architecture's own random initialisation. It has no options."""

    method: ClassVar[str] = "random"
    title: ClassVar[str] = "random init (baseline)"


METHOD_OPTIONS: dict[str, type[MethodOptions]] = {
    cls.method: cls
    for cls in (FrontOptions, BotOptions, WeightSelectionOptions, HyperCloningOptions, StackOptions, RandomInitOptions)
}


def options_class(method: str) -> type[MethodOptions]:
    """The options dataclass of the method called ``method``."""
    if method not in METHOD_OPTIONS:
        raise LearngeneConfigError(f"unknown learngene method '{method}'; choose one of {', '.join(METHOD_OPTIONS)}")
    return METHOD_OPTIONS[method]


def method_options(method: str, values: Mapping[str, Any] | None = None) -> MethodOptions:
    """The options of ``method`` with ``values`` set (a learngene's saved options, say), the rest defaults."""
    cls = options_class(method)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values or {}) - set(names))
    if unknown:
        raise LearngeneConfigError(f"{', '.join(unknown)}: not an option of {method}; its options are "
                                   f"{', '.join(names) or 'none'}")
    return cls(**(values or {}))


def flag(name: str, dashes: bool) -> str:
    """An option's command-line flag: ``--snr_db`` in the recipes, ``--snr-db`` in ``hf-learngene``."""
    return "--" + (name.replace("_", "-") if dashes else name)


def add_option_arguments(parser: argparse.ArgumentParser, methods: list[str], dashes: bool = False) -> None:
    """One flag per option of ``methods``, in a group per method. Every flag defaults to ``None``
    (not given), so :func:`options_from_arguments` can tell what was asked for."""
    added = set()
    for method in methods:
        cls = options_class(method)
        if not dataclasses.fields(cls):
            continue
        group = parser.add_argument_group(f"{method} options", cls.__doc__)
        hints = typing.get_type_hints(cls)
        for option in dataclasses.fields(cls):
            if option.name in added:  # an option two methods share is one flag
                continue
            added.add(option.name)
            kind = option.metadata.get("cli_type") or _plain_type(hints[option.name])
            shown = "" if option.default is None or option.default is False else f" (default {option.default})"
            details = {"default": None, "dest": option.name, "help": option.metadata["help"] + shown}
            if kind is bool:
                group.add_argument(flag(option.name, dashes), action="store_true", **details)
            else:
                group.add_argument(flag(option.name, dashes), type=kind, choices=option.metadata.get("choices"),
                                   **details)


def _plain_type(hint: Any) -> type:
    """``float`` for ``float | None``; the type itself otherwise."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"an option of type {hint} needs metadata['cli_type'] to be set on the command line")
        return kinds[0]
    return hint


def options_from_arguments(
    method: str, arguments: argparse.Namespace, methods: list[str], dashes: bool = False
) -> MethodOptions:
    """The options of ``method`` from flags that :func:`add_option_arguments` made for ``methods``.

    A flag of another method is refused rather than ignored: ``--wavelet`` with ``--method front``
    is a mistake the user should hear about.
    """
    own = {option.name for option in dataclasses.fields(options_class(method))}
    flagged = {option.name for name in methods for option in dataclasses.fields(options_class(name))}
    given = {name: getattr(arguments, name) for name in flagged if getattr(arguments, name) is not None}
    foreign = sorted(set(given) - own)
    if foreign:
        raise LearngeneConfigError(
            f"{', '.join(flag(name, dashes) for name in foreign)}: not an option of --method {method}; its options "
            f"are {', '.join(flag(name, dashes) for name in sorted(own)) or 'none'}"
        )
    return method_options(method, given)
