"""``hf-learngene``: extract, build and inspect learngenes from the command line.

    hf-learngene extract SOURCE --method front --out DIR [--keep 0.5] [--max-shard-size 5GB] [--storage-dtype bfloat16]
        [--overwrite]   # write into DIR when it is not empty (refused without it; never the source)
    hf-learngene extract SOURCE --method hypercloning --snr-db 20 --out DIR   # each method's options: extract --help
    hf-learngene build LEARNGENE --size mini --task sequence-classification --num-labels 2 --out DIR [--dtype bfloat16]
    hf-learngene inspect DIR [--size tinyllama-1.1b --task causal-lm --dtype bfloat16]

``extract`` and ``build`` stream role by role to disk: neither holds the whole source, learngene
or target in memory, so they run for 7-70B models on a machine with far less memory. Every option
is checked before any work (``hf_learngene.cli_types``): a bad value exits with code 2 naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .auto import TASKS
from .cli_types import (
    LEARNGENE_FOLDER,
    MODEL_FOLDER,
    check_size,
    device,
    name,
    output_folder,
    parse_size,
    positive_integer,
    requires,
    shard_size,
    size,
    state_ranges,
)
from .errors import LearngeneError
from .learngene import Learngene
from .methods import METHODS, RESCALING_POLICIES
from .methods.options import add_option_arguments, options_from_arguments

__all__ = ["build_parser", "main", "parse_args", "parse_size"]  # parse_size stays importable from here

CLASSIFICATION_TASKS = sorted(task for task in TASKS if task.endswith("classification"))


def _extract(args: argparse.Namespace) -> None:
    learngene = Learngene.extract(
        args.source, method=args.method, rescaling=args.rescaling, revision=args.revision, save_directory=args.out,
        max_shard_size=args.max_shard_size, storage_dtype=args.storage_dtype, **dataclasses.asdict(args.options),
    )
    info = learngene.summary()
    print(
        f"saved {info['method']} learngene of {info['source']} ({info['family']}) to {args.out}: "
        f"{info['stored_values']:,} values ({info['stored_bytes']:,} bytes in {info['storage_dtype']}) for "
        f"{info['source_parameters']:,} source parameters (compression {info['compression']:.2f}x)"
    )


def _build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The size and build arguments shared by ``build`` and ``inspect --size``."""
    overrides = {"num_labels": args.num_labels} if args.num_labels is not None else {}
    auto_class = None if args.task == "base" else TASKS[args.task]  # None: the family's base model (diffusers too)
    return {"size": parse_size(args.size), "auto_class": auto_class, "dtype": args.dtype, **overrides}


def _build(args: argparse.Namespace) -> None:
    learngene = Learngene.from_pretrained(args.learngene, revision=args.revision, low_cpu_mem_usage=True)
    request = _build_request(args)
    plan = learngene.build_estimate(**request)
    print(f"building {plan['model_class']} with {plan['parameters']:,} parameters ({_bytes(plan['bytes'])} in "
          f"{plan['dtype']}) into {args.out}; peak host memory about {_bytes(plan['peak_build_pretrained_bytes'])}")
    learngene.build_pretrained(args.out, device=args.device, max_shard_size=args.max_shard_size, **request)
    print(f"saved {plan['model_class']} ({plan['parameters']:,} parameters) to {args.out}")


def _bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count} B"


def _inspect(args: argparse.Namespace) -> None:
    learngene = Learngene.from_pretrained(args.learngene, revision=args.revision, low_cpu_mem_usage=True)
    info = learngene.summary()
    if args.size is not None:
        info["build"] = learngene.build_estimate(**_build_request(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return
    sizes = ", ".join(f"{k}={v}" for k, v in info["source_sizes"].items())
    options = ", ".join(f"{k}={v}" for k, v in info["method_options"].items()) or "defaults"
    print(f"learngene  : {args.learngene}")
    print(f"method     : {info['method']} ({options}), rescaling={info['rescaling']}")
    print(f"source     : {info['source']} [{info['model_type']}] {sizes}")
    print(f"roles      : {info['roles']}")
    print(f"stored     : {info['stored_values']:,} values, {_bytes(info['stored_bytes'])} in {info['storage_dtype']}")
    print(f"described  : {info['source_parameters']:,} source parameters")
    print(f"compression: {info['compression']:.2f}x")
    print(f"presets    : {', '.join(learngene.architecture.presets)}")
    if "build" in info:
        plan = info["build"]
        sizes = ", ".join(f"{k}={v}" for k, v in plan["sizes"].items())
        print(f"build      : {plan['model_class']} {sizes}: {plan['parameters']:,} parameters, "
              f"{_bytes(plan['bytes'])} in {plan['dtype']}")
        print(f"memory     : about {_bytes(plan['peak_build_bytes'])} to build in memory, "
              f"{_bytes(plan['peak_build_pretrained_bytes'])} to build to disk (hf-learngene build)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-learngene", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    extract = commands.add_parser("extract", help="extract a learngene from a pretrained model (folder or Hub id)")
    extract.add_argument("source", type=MODEL_FOLDER, help="the pretrained model to extract from")
    extract.add_argument("--method", choices=sorted(METHODS), default="front")
    _add_output(extract, "folder to write the learngene to", "a learngene")
    extract.add_argument("--rescaling", choices=RESCALING_POLICIES, default=None,
                         help="default: the method's own (auto for front and bot, none for the peers)")
    extract.add_argument("--max-shard-size", type=shard_size,
                         help="shard the learngene's files at this size, e.g. 5GB (default: one file)")
    extract.add_argument("--storage-dtype", choices=["float32", "bfloat16", "float16"], default=None,
                         help="dtype the learngene is stored in (default float32; bfloat16 halves the bytes)")
    extract.add_argument("--revision", type=name, help="Hub revision (branch, tag or commit) of SOURCE")
    add_option_arguments(extract, list(METHODS), dashes=True)
    extract.set_defaults(func=_extract, check=functools.partial(_check_extract, extract))

    build = commands.add_parser("build", help="build a transformers model of a given size from a learngene, "
                                              "streamed to disk")
    build.add_argument("learngene", type=LEARNGENE_FOLDER, help="learngene folder or Hub id")
    _add_build_request(build)
    build.add_argument("--device", type=device, default=None, help="where the resize runs, e.g. cuda (default cpu)")
    build.add_argument("--max-shard-size", type=shard_size, default="2GB",
                       help="shard size of the model's files (default 2GB)")
    _add_output(build, "folder to write the model to", "a model")
    build.add_argument("--revision", type=name, help="Hub revision (branch, tag or commit) of LEARNGENE")
    build.set_defaults(func=_build, check=functools.partial(_check_build, build))

    inspect = commands.add_parser("inspect", help="show a learngene's method, source, sizes and compression, "
                                                  "and with --size what a build of that size needs")
    inspect.add_argument("learngene", type=LEARNGENE_FOLDER, help="learngene folder or Hub id")
    _add_build_request(inspect)
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.add_argument("--revision", type=name, help="Hub revision (branch, tag or commit) of LEARNGENE")
    inspect.set_defaults(func=_inspect, check=functools.partial(_check_inspect, inspect))
    for command in (extract, build, inspect):
        state_ranges(command)
    return parser


def _add_output(command: argparse.ArgumentParser, help: str, what: str) -> None:
    command.add_argument("--out", required=True, type=output_folder, help=help)
    command.add_argument("--overwrite", action="store_true",
                         help=f"write into a non-empty --out: {what} and files of the same names are replaced, "
                              "stale shards removed, other files kept")


def _add_build_request(command: argparse.ArgumentParser) -> None:
    command.add_argument("--size", type=size, help="the learngene's preset name, JSON, or layers=4,hidden=256,heads=4 "
                                                   "(default: source size)")
    command.add_argument("--task", choices=sorted(TASKS), default="base")
    command.add_argument("--num-labels", type=positive_integer,
                         help=f"labels of a classification task ({', '.join(CLASSIFICATION_TASKS)})")
    command.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])


def _check_output(parser: argparse.ArgumentParser, args: argparse.Namespace, source: str) -> None:
    """Saving writes into --out: a folder with files in it is written into only with --overwrite,
    and never the source (a local folder)."""
    out = Path(args.out).resolve()
    if Path(source).exists():  # a Hub id names no folder here: `extract gpt2 --out gpt2` is fine
        read_from = Path(source).resolve()
        if out == read_from:
            parser.error(f"--out {args.out} is the folder read from; saving would overwrite its files: write to "
                         "another folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        found = sorted(path.name for path in out.iterdir())
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        parser.error(f"--out {args.out} is not empty ({shown}): give --overwrite to write into it "
                     "(files of the same names are replaced, other files kept), or choose another --out")


def _check_extract(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        args.options = options_from_arguments(args.method, args, list(METHODS), dashes=True)
    except LearngeneError as error:
        parser.error(str(error))
    _check_output(parser, args, args.source)


def _check_build_request(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.num_labels is not None and args.task not in CLASSIFICATION_TASKS:
        parser.error(f"--num-labels {args.num_labels} needs a classification --task "
                     f"({', '.join(CLASSIFICATION_TASKS)}), not '{args.task}'")
    check_size(parser, "--size", args.size, args.learngene)


def _check_build(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    _check_build_request(parser, args)
    _check_output(parser, args, args.learngene)


def _check_inspect(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    requires(parser, args, ["--task", "--num-labels", "--dtype"], args.size is not None,
             "with --size (they describe the build to estimate)")
    _check_build_request(parser, args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's arguments, every value and combination checked before any work starts."""
    args = build_parser().parse_args(argv)
    args.check(args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as stop:  # a bad option (argparse printed why) or --help: return the code it exits with
        return stop.code if isinstance(stop.code, int) else 0
    try:
        args.func(args)
    except LearngeneError as error:
        print(f"hf-learngene {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
