"""Argparse types and checks shared by ``hf-learngene`` and the recipes, so that a bad value is refused
before any work starts.

Every option says what it accepts once, through its ``type``: an :class:`ArgType` parses the text
and refuses a bad value with a message naming the value and what would be valid (argparse adds the
option's name and exits with code 2, as for any bad argument), and :func:`state_ranges` appends the
same range to the option's help, so ``--help`` and the error agree. Checks that involve several
options, or the disk (an output folder that holds a finished run), take the parser and call
``parser.error``, which also exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import LearngeneError

SEED_MAX = 2**32 - 1  # accelerate's set_seed also seeds numpy, which takes no larger seed


class ArgType:
    """An argparse ``type``: ``parse`` turns the text into a value or raises ``ValueError`` (its
    message, if any, says why); ``valid`` says what is accepted, in the error and in ``--help``."""

    def __init__(self, valid: str, parse: Callable[[str], Any]) -> None:
        self.valid = valid
        self.parse = parse
        self.__name__ = valid  # argparse names a type by its __name__ in some messages

    def __call__(self, text: str) -> Any:
        try:
            return self.parse(text)
        except ValueError as error:  # hf_learngene's errors and huggingface_hub's are ValueErrors too
            reason = str(error)
        except OSError as error:  # a path the system cannot look at, e.g. a file name too long
            reason = error.strerror or str(error)
        reason = f" ({reason})" if reason else ""
        raise argparse.ArgumentTypeError(f"invalid value {text!r}{reason}; expected {self.valid}")

    def __repr__(self) -> str:
        return f"ArgType({self.valid!r})"


def _shown(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _interval(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """`` in (0, 1]``, `` >= 1``, `` < 1`` or nothing: a range as the messages write it."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{_shown(low)}, {_shown(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {_shown(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {_shown(high)}"
    return ""


def integer(minimum: int | None = None, maximum: int | None = None, zero: str | None = None) -> ArgType:
    """An integer in ``[minimum, maximum]``; ``zero`` says what 0 means where 0 turns something off."""
    valid = "an integer" + _interval(minimum, maximum) + (f" (0 means {zero})" if zero else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("not an integer") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError("out of range")
        return value

    return ArgType(valid, parse)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
           noun: str = "a number", note: str = "") -> ArgType:
    """A finite float between ``low`` and ``high`` (each end included unless ``*_open``)."""
    valid = noun + _interval(low, high, low_open, high_open) + (f" ({note})" if note else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(value):
            raise ValueError("not finite")
        too_low = low is not None and (value < low or (low_open and value == low))
        too_high = high is not None and (value > high or (high_open and value == high))
        if too_low or too_high:
            raise ValueError("out of range")
        return value

    return ArgType(valid, parse)


positive_integer = integer(1)
seed = integer(0, SEED_MAX)
positive_number = number(0, low_open=True)
non_negative_number = number(0)
fraction = number(0, 1, low_open=True, noun="a fraction")


def _non_empty(text: str) -> str:
    if not text.strip() or text != text.strip():
        raise ValueError("empty, or with spaces around it")
    return text


name = ArgType("a non-empty name", _non_empty)


def fractions(parts: Sequence[str]) -> ArgType:
    """Comma-separated non-negative fractions, one per part, summing to 1, as a dict of part → fraction."""
    valid = f"{len(parts)} non-negative fractions {','.join(parts)} summing to 1"

    def parse(text: str) -> dict[str, float]:
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError:
            raise ValueError("not numbers") from None
        if len(values) != len(parts) or any(not 0 <= v <= 1 for v in values) or abs(sum(values) - 1) > 1e-6:
            raise ValueError("")
        return dict(zip(parts, values))

    return ArgType(valid, parse)


def existing_file(suffixes: Sequence[str] = ()) -> ArgType:
    """A path to an existing file, ending in one of ``suffixes`` when given (case ignored)."""
    valid = "an existing file" + (f" ending in {', '.join(suffixes)}" if suffixes else "")

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ValueError("a folder" if path.is_dir() else "no such file")
        if suffixes and path.suffix.lower() not in suffixes:
            raise ValueError(f"a {path.suffix or 'suffix-less'} file")
        return str(path)

    return ArgType(valid, parse)


def _check_folder(path: Path, marker: str | None) -> None:
    if not path.is_dir():
        raise ValueError("a file, not a folder" if path.exists() else "no such folder")
    if marker and not (path / marker).is_file():
        raise ValueError(f"{marker} is missing there")


def existing_folder(marker: str | None = None, what: str = "folder") -> ArgType:
    """A path to an existing folder, holding the file ``marker`` when given (a saved model's config)."""
    valid = f"an existing {what}" + (f" holding {marker}" if marker else "")

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        _check_folder(path, marker)
        return str(path)

    return ArgType(valid, parse)


def looks_like_hub_repo(text: str) -> bool:
    """Whether ``text`` is a valid Hub repo id (``name`` or ``owner/name``), without asking the Hub."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def folder_or_hub_repo(marker: str | None = None, what: str = "folder") -> ArgType:
    """A local folder (holding ``marker`` when given) or a Hub repo id. A path that exists must be
    such a folder; one that does not must at least be a valid repo id (the Hub is asked later)."""
    valid = f"an existing {what}" + (f" holding {marker}" if marker else "") + " or a Hub repo id such as owner/name"

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if path.exists() or not looks_like_hub_repo(text):
            _check_folder(path, marker)
            return str(path)
        return text  # a Hub repo id, as given

    return ArgType(valid, parse)


LEARNGENE_FOLDER = folder_or_hub_repo("config.json", "learngene folder")
MODEL_FOLDER = folder_or_hub_repo("config.json", "model folder")


def dataset(names: Sequence[str], what: str) -> ArgType:
    """A dataset: one of ``names`` (case ignored), an existing local folder of ``what``, or what can
    only be a Hub dataset id (the Hub is asked when the data are loaded)."""
    valid = f"{', '.join(names)}, an existing {what} or a Hub dataset id"

    def parse(text: str) -> str:
        for known in names:
            if text.lower() == known.lower():
                return known  # the name as the recipe compares it
        path = Path(text).expanduser()
        if path.is_dir():
            return str(path)
        if path.exists():
            raise ValueError("a file, not a folder")
        if not looks_like_hub_repo(text):
            raise ValueError("no such folder, and not a Hub dataset id")
        return text  # a Hub dataset id, as given

    return ArgType(valid, parse)


def _output_folder(text: str) -> str:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError("it is a file")
    parent = path
    while not parent.exists():  # the nearest folder that exists is where the new ones are made
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{parent} is not writable")
    return str(path)


output_folder = ArgType("a folder, existing or new, in a writable place", _output_folder)


def _size(text: str) -> str:
    parse_size(text)
    return text


size = ArgType("a preset of the model's family (hf-learngene inspect lists them), a JSON object, or sizes as "
               "name=value pairs such as layers=4,hidden=256,heads=4 or channels=200,400", _size)


def parse_size(text: str | None) -> Any:
    """A preset name, a JSON object, or ``key=value`` pairs (``layers=3,hidden=192,heads=3``); a
    value may be a list of integers (``channels=200,400`` or ``block_out_channels=64,128,128``)."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise LearngeneError("a size cannot be empty: give a preset name or sizes such as layers=3,hidden=192")
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise LearngeneError(f"the size is not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise LearngeneError("a JSON size must be an object such as {\"num_hidden_layers\": 2}")
        return value
    if "=" in text:
        request = {}
        for pair in re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", text):
            key, _, value = pair.partition("=")
            numbers = [v.strip() for v in value.split(",")]
            if not key.strip() or not all(v.lstrip("-").isdigit() for v in numbers):
                raise LearngeneError(f"size field '{pair}' must be name=integer(s), e.g. layers=3,hidden=192,heads=3 "
                                     "or channels=200,400")
            request[key.strip()] = int(numbers[0]) if len(numbers) == 1 else [int(v) for v in numbers]
        return request
    return text


def _shard_size(text: str) -> str:
    from .learngene_files import parse_shard_size

    parse_shard_size(text)
    return text


shard_size = ArgType("a size such as 5GB or 500MB, or a number of bytes, above 0", _shard_size)


def _device(text: str) -> str:
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError("not a torch device") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError("no such CUDA device here")
    return text


device = ArgType("a torch device that is here, such as cpu, cuda or cuda:1", _device)


def state_ranges(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Append each typed option's valid range to its help, so ``--help`` says what the check says.
    (argparse keeps a parser's options in ``_actions``; it has no public list of them.)"""
    for action in parser._actions:
        if isinstance(action.type, ArgType):
            valid = action.type.valid.replace("%", "%%")
            action.help = f"{action.help} [valid: {valid}]" if action.help else f"valid: {valid}"
    return parser


def given(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: Sequence[str]) -> list[str]:
    """Those of ``flags`` set to something other than their default (an option the user gave)."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    chosen = []
    for flag in flags:
        action = actions[flag]
        default = action.default
        if isinstance(default, str) and action.type is not None:  # argparse converts a text default with its type
            default = action.type(default)
        if getattr(args, action.dest) != default:
            chosen.append(flag)
    return chosen


def requires(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: Sequence[str], condition: bool,
             needs: str) -> None:
    """Refuse those of ``flags`` the user gave unless ``condition`` holds: ``"FLAGS: only NEEDS"``,
    e.g. ``requires(parser, args, ["--init"], bool(args.learngene), "with --learngene")``."""
    chosen = given(parser, args, flags)
    if chosen and not condition:
        parser.error(f"{', '.join(chosen)}: only {needs}")


def earlier_run(folder: str | os.PathLike, markers: Sequence[str]) -> list[Path]:
    """What an earlier run left in ``folder``: the paths matching the glob patterns ``markers``."""
    return sorted({path for marker in markers for path in Path(folder).glob(marker)})


def earlier_run_message(option: str, folder: str | os.PathLike, found: Sequence[Path], overwrite_flag: str,
                        resume_flag: str | None = None) -> str:
    names = ", ".join(sorted({path.name for path in found}))
    resume = f"continue it with {resume_flag}, " if resume_flag else ""
    return (f"{option} {folder} holds an earlier run ({names}): {resume}start afresh with {overwrite_flag}, "
            f"or choose another {option}")


def check_fresh_output(parser: argparse.ArgumentParser, option: str, folder: str | os.PathLike,
                       markers: Sequence[str], overwrite_flag: str, overwrite: bool,
                       resume_flag: str | None = None, resume: bool = False) -> None:
    """Refuse an output folder holding an earlier run unless the user asked to overwrite it or
    continue it: a new run would mix its files with the old ones, or silently replace them."""
    found = earlier_run(folder, markers)
    if found and not (overwrite or resume):
        parser.error(earlier_run_message(option, folder, found, overwrite_flag, resume_flag))


def _local_architecture(source: str | None) -> tuple[Any, Any] | None:
    """(architecture, source config) of a local learngene or model folder; None for a Hub id or a
    folder this cannot read (loading it later says what is wrong)."""
    if source is None or not (Path(source) / "config.json").is_file():
        return None
    from .architectures import ARCHITECTURES, architecture_for, config_from_dict, model_type_of

    try:
        fields = json.loads((Path(source) / "config.json").read_text())
        if fields.get("model_type") == "learngene":
            return ARCHITECTURES[fields["family"]], config_from_dict(fields["source_config"])
        return architecture_for(model_type_of(fields)), config_from_dict(fields)
    except (ValueError, KeyError, TypeError):
        return None


def presets_of(source: str | None) -> list[str]:
    """The size presets of a local learngene's or model's family (none known for a Hub id)."""
    local = _local_architecture(source)
    return list(local[0].presets) if local else []


def check_size(parser: argparse.ArgumentParser, option: str, text: str | None, source: str | None) -> None:
    """Refuse a size that ``source`` (a local learngene or model folder) cannot be built at, e.g. an
    unknown preset or a hidden size its heads do not divide. A Hub source is checked when loaded."""
    local = _local_architecture(source)
    if text is None or local is None:
        return
    from .architectures import resolve_target_config

    architecture, source_config = local
    try:
        resolve_target_config(architecture, source_config, parse_size(text))
    except LearngeneError as error:
        parser.error(f"{option} {text}: {error}")
