"""Why BoT's whole-unit shrink beats the low-pass and weight selection: one choice taken away at a time.

BoT's default shrink (``shrink="units"``) differs from its paper's low-pass (``shrink="wavelet"``) and
from weight selection in a few separate choices. Each row below builds the same target from MiniLM
with one of them undone, then trains every model identically (masked LM on one corpus, the same
batches, masks and fresh MLM head; ``convergence.py``'s harness) and reports the held-out loss along
the way:

* ``bot (units)``: the default: the residual units with the largest norm gains, whole heads side by
  side where heads get fewer and larger, evenly spaced units elsewhere, ``kept_variance`` rescaling;
* ``… hidden evenly spaced``: the hidden axis takes evenly spaced units, as every other axis does
  (``Learngene.hidden_ranking`` withheld);
* ``… heads kept apart``: the head axes are resized one by one (fewer whole heads, each dimension
  repeated) instead of whole heads side by side (``BotResizer.regroup`` off);
* ``… source_std``: the kept units re-standardised to each source tensor's std, the low-pass's policy;
* ``bot (wavelet)``: the paper's low-pass (with ``non_dyadic="split"``), rescaled by ``source_std``;
* ``weight_selection``: evenly spaced elements of a flat heads × head size axis, no rescaling.

It is a diagnosis at a short budget (600 steps by default), not the convergence table: the steps
saved against random init at the full budget are ``convergence.py``'s.

    python benchmarks/shrink_ablation.py [--targets 'shrink 4L/256/4H' ...] [--corpus imdb] [--steps 600]
    python benchmarks/shrink_ablation.py --quick    # seconds: checks the harness

Writes ``shrink_ablation[_CORPUS].json`` (with the command line) and ``.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from unittest import mock

import torch
import transformers

from hf_learngene import Learngene
from hf_learngene.methods.bot import BotResizer

sys.path.insert(0, str(Path(__file__).parent))
from convergence import CORPORA, TARGETS, MaskedReviews, Settings, build_model, train_mlm  # noqa: E402
from imdb_finetune import minilm_path  # noqa: E402

SHRINK_TARGETS = [name for name in TARGETS if name.startswith("shrink")]
DEFAULT = Settings(steps=600, batch=16, max_length=64, lr=1e-3, lr_sweep=(), eval_every=100, finetune_steps=0)
QUICK = replace(DEFAULT, steps=2, batch=4, eval_every=1, train_reviews=64, heldout_reviews=16)


@contextlib.contextmanager
def hidden_evenly_spaced():
    """Builds in this block get no hidden ranking, so the hidden axis keeps evenly spaced units."""
    with mock.patch.object(Learngene, "hidden_ranking", new=property(lambda self: None)):
        yield


@contextlib.contextmanager
def heads_kept_apart():
    """Builds in this block resize the heads and head-size axes one by one."""
    with mock.patch.object(BotResizer, "regroup", lambda self, *args: None):
        yield


# label → (method, options, rescaling or None for the method's default, the context the build runs in)
VARIANTS = {
    "bot (units)": ("bot", {}, None, contextlib.nullcontext),
    "bot (units), hidden evenly spaced": ("bot", {}, None, hidden_evenly_spaced),
    "bot (units), heads kept apart": ("bot", {}, None, heads_kept_apart),
    "bot (units), source_std": ("bot", {}, "source_std", contextlib.nullcontext),
    "bot (wavelet)": ("bot", {"shrink": "wavelet"}, None, contextlib.nullcontext),
    "weight_selection": ("weight_selection", {}, None, contextlib.nullcontext),
}


def build_variant(label: str, target: dict, settings: Settings):
    method, options, rescaling, context = VARIANTS[label]
    with context():
        model, refusal, _ = build_model(method, target, replace(settings, rescaling=rescaling), options)
    if model is None:
        raise SystemExit(f"{label} cannot build {target}: {refusal}")
    return model


def markdown(report: dict) -> str:
    settings = report["settings"]
    lines = [f"Shrink ablation on {settings['corpus']}: {settings['steps']} masked-LM steps of batch "
             f"{settings['batch']} at {settings['max_length']} tokens, lr {settings['lr']:g}; held-out loss "
             f"(every {settings['eval_every']} steps). Command: `{report['command']}`", ""]
    for target, rows in report["results"].items():
        steps = [step for step, _ in rows[0]["curve"]]
        shown = steps[1:: max(1, (len(steps) - 1) // 3)][-3:]
        lines += [f"**{target}**", "", "| variant | " + " | ".join(f"step {s}" for s in shown) + " | final |",
                  "|---|" + "---|" * (len(shown) + 1)]
        best = min(row["final_loss"] for row in rows)
        for row in rows:
            curve = dict(row["curve"])
            final = f"**{row['final_loss']:.3f}**" if row["final_loss"] == best else f"{row['final_loss']:.3f}"
            lines.append(f"| {row['variant']} | " + " | ".join(f"{curve[s]:.3f}" for s in shown) + f" | {final} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps on a few texts: checks the harness")
    parser.add_argument("--targets", nargs="+", choices=SHRINK_TARGETS, default=SHRINK_TARGETS)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--corpus", choices=CORPORA, default="imdb")
    parser.add_argument("--steps", type=int, help=f"masked-LM steps per model (default {DEFAULT.steps})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate, every model (default {DEFAULT.lr:g}: what "
                                                 "convergence.py's sweep chose for random init at both targets on IMDB)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    settings = replace(QUICK if args.quick else DEFAULT, corpus=args.corpus)
    settings = replace(settings, **{k: v for k, v in {"steps": args.steps, "lr": args.lr}.items() if v is not None})
    if settings.steps < 1 or settings.lr <= 0:
        parser.error("--steps must be ≥ 1 and --lr > 0")
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "benchmarks/shrink_ablation.py", *(argv if argv is not None else sys.argv[1:])])

    data = MaskedReviews(transformers.AutoTokenizer.from_pretrained(minilm_path()), settings)
    results = {}
    for target_name in args.targets:
        rows = []
        for label in args.variants:
            start = time.perf_counter()
            curve = train_mlm(build_variant(label, TARGETS[target_name], settings), data, settings)
            rows.append({"variant": label, "curve": curve, "final_loss": curve[-1][1],
                         "seconds": time.perf_counter() - start})
            print(f"[{target_name}] {label}: held-out loss {curve[0][1]:.3f} → {curve[-1][1]:.3f} "
                  f"({rows[-1]['seconds']:.0f}s)", flush=True)
        results[target_name] = rows
    report = {"command": command, "settings": asdict(settings), "unigram_plateau": data.unigram_plateau,
              "environment": {"torch": torch.__version__, "transformers": transformers.__version__},
              "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("shrink_ablation" + ("_quick" if args.quick else "") + ("" if args.corpus == "imdb" else f"_{args.corpus}"))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(json.loads(json.dumps(report))))
    print(markdown(json.loads(json.dumps(report))))
    return report


if __name__ == "__main__":
    main()
