"""``hf-learngene``: extract, build and inspect learngenes from the command line.

    hf-learngene extract SOURCE --method front --out DIR [--keep 0.5] [--max-shard-size 5GB] [--storage-dtype bfloat16]
    hf-learngene extract SOURCE --method hypercloning --snr-db 20 --out DIR   # each method's options: extract --help
    hf-learngene build LEARNGENE --size mini --task sequence-classification --num-labels 2 --out DIR [--dtype bfloat16]
    hf-learngene inspect DIR [--size tinyllama-1.1b --task causal-lm --dtype bfloat16]

``extract`` and ``build`` stream role by role to disk: neither holds the whole source, learngene
or target in memory, so they run for 7-70B models on a machine with far less memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any, Sequence

from .auto import TASKS
from .errors import LearngeneError
from .learngene import Learngene
from .methods import METHODS, RESCALING_POLICIES
from .methods.options import add_option_arguments, options_from_arguments


def parse_size(text: str | None) -> Any:
    """A preset name, a JSON object, or ``key=value`` pairs (``layers=3,hidden=192,heads=3``); a
    value may be a list of integers (``channels=200,400`` or ``block_out_channels=64,128,128``)."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    if "=" in text:
        size = {}
        for pair in re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", text):
            key, _, value = pair.partition("=")
            numbers = [v.strip() for v in value.split(",")]
            if not all(v.lstrip("-").isdigit() for v in numbers):
                raise LearngeneError(f"size field '{pair}' must be name=integer(s), e.g. layers=3,hidden=192,heads=3 "
                                     "or channels=200,400")
            size[key.strip()] = int(numbers[0]) if len(numbers) == 1 else [int(v) for v in numbers]
        return size
    return text


def _extract(args: argparse.Namespace) -> None:
    options = options_from_arguments(args.method, args, list(METHODS), dashes=True)
    learngene = Learngene.extract(
        args.source, method=args.method, rescaling=args.rescaling, revision=args.revision, save_directory=args.out,
        max_shard_size=args.max_shard_size, storage_dtype=args.storage_dtype, **dataclasses.asdict(options),
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
    extract.add_argument("source")
    extract.add_argument("--method", choices=sorted(METHODS), default="front")
    extract.add_argument("--out", required=True, help="folder to write the learngene to")
    extract.add_argument("--rescaling", choices=RESCALING_POLICIES, default=None,
                         help="default: the method's own (auto for front and bot, none for the peers)")
    extract.add_argument("--max-shard-size", help="shard the learngene's files at this size, e.g. 5GB (default: one file)")
    extract.add_argument("--storage-dtype", choices=["float32", "bfloat16", "float16"], default=None,
                         help="dtype the learngene is stored in (default float32; bfloat16 halves the bytes)")
    extract.add_argument("--revision")
    add_option_arguments(extract, list(METHODS), dashes=True)
    extract.set_defaults(func=_extract)

    build = commands.add_parser("build", help="build a transformers model of a given size from a learngene, "
                                              "streamed to disk")
    build.add_argument("learngene", help="learngene folder or Hub id")
    _add_build_request(build)
    build.add_argument("--device", default=None, help="where the resize runs, e.g. cuda (default cpu)")
    build.add_argument("--max-shard-size", default="2GB", help="shard size of the model's files (default 2GB)")
    build.add_argument("--out", required=True)
    build.add_argument("--revision")
    build.set_defaults(func=_build)

    inspect = commands.add_parser("inspect", help="show a learngene's method, source, sizes and compression, "
                                                  "and with --size what a build of that size needs")
    inspect.add_argument("learngene")
    _add_build_request(inspect)
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.add_argument("--revision")
    inspect.set_defaults(func=_inspect)
    return parser


def _add_build_request(command: argparse.ArgumentParser) -> None:
    command.add_argument("--size", help="preset name, JSON, or layers=4,hidden=256,heads=4 (default: source size)")
    command.add_argument("--task", choices=sorted(TASKS), default="base")
    command.add_argument("--num-labels", type=int)
    command.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (LearngeneError, json.JSONDecodeError) as error:
        print(f"hf-learngene {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
