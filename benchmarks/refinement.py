"""Does FRONT's spectral refinement improve a compact learngene? Measured on MiniLM.

Refinement continues training the source briefly with a penalty on the energy its weights hold
outside the low-frequency DCT block a FRONT learngene keeps, then extracts
(:func:`hf_learngene.refine`). Extra training alone could also change the learngene, so every
refined source is compared with a control trained identically with the penalty switched off:

* ``as is``: MiniLM, extracted directly;
* ``control``: MiniLM + ``--refine-steps`` masked-LM steps on IMDB reviews, weight 0;
* ``refined λ``: the same steps with penalty weight λ, for every ``--weights`` value.

For each source the script reports the energy share outside the kept block, the relative error
of rebuilding the source at its own size from the learngene (what the truncation loses), and the
same masked-LM convergence and sentiment fine-tuning as ``benchmarks/convergence.py`` for a
target built from the learngene (held-out loss after ``--steps``).

    python benchmarks/refinement.py [--keep 0.5] [--weights 1 10] [--refine-steps 200]
        [--target "shrink 4L/256/4H"] [--device cuda]

Outputs ``refinement.json`` and ``refinement.md`` in ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch
import transformers

from hf_learngene import Learngene, SpectralRegularizer, refine
from hf_learngene.learngene import canonical_state

sys.path.insert(0, str(Path(__file__).parent))
from convergence import TARGETS, MaskedReviews, Settings, build_model, sentiment_accuracy, train_mlm  # noqa: E402
from imdb_finetune import Budget, default_device, load_imdb, minilm_path  # noqa: E402

REFINE_BATCH_OFFSET = 100_000  # refinement draws its masks from batches the convergence run never uses


# the masked-LM harness this check was measured with: the convergence benchmark's former 400-step budget
HARNESS = Settings(steps=400, eval_every=25)


def source_model(settings: Settings, device: str) -> transformers.PreTrainedModel:
    """MiniLM with a seeded fresh masked-LM head (MiniLM ships none)."""
    torch.manual_seed(settings.seed)
    return transformers.AutoModelForMaskedLM.from_pretrained(minilm_path()).to(device)


def rebuild_error(model, keep: float) -> float:
    """‖rebuilt − source‖ / ‖source‖ over every weight the learngene holds, rebuilt at the source size
    without rescaling, so that it measures what the truncation alone loses."""
    learngene = Learngene.extract(model, method="front", keep=keep, rescaling="none", show_progress=False)
    rebuilt = canonical_state(learngene.build(None, auto_class=type(model), show_progress=False))
    original = {k: v.cpu() for k, v in canonical_state(model).items()}
    names = [k for k in rebuilt if k in original]
    error = sum((rebuilt[k].float() - original[k].float()).pow(2).sum() for k in names)
    return (error / sum(original[k].float().pow(2).sum() for k in names)).sqrt().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=float, default=0.5, help="FRONT's kept ratio per resizable axis")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 10.0], help="penalty weights λ to try")
    parser.add_argument("--refine-steps", type=int, default=200)
    parser.add_argument("--refine-lr", type=float, default=5e-5)
    parser.add_argument("--target", default="shrink 4L/256/4H", choices=list(TARGETS))
    parser.add_argument("--steps", type=int, help=f"masked-LM steps on the target (default {HARNESS.steps})")
    parser.add_argument("--finetune-steps", type=int, help=f"sentiment steps (default {Settings.finetune_steps})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=default_device(), help="default: cuda when available, else cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = replace(HARNESS, steps=args.steps or HARNESS.steps,
                       finetune_steps=settings.finetune_steps if args.finetune_steps is None else args.finetune_steps)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    data = MaskedReviews(tokenizer, settings)
    sentiment = load_imdb(tokenizer, Budget()) if settings.finetune_steps > 0 else None
    batches = [data.batch(REFINE_BATCH_OFFSET + i, args.device) for i in range(args.refine_steps)]

    variants = [("as is", None), ("control (λ=0)", 0.0)] + [(f"refined λ={w:g}", w) for w in args.weights]
    rows = []
    for label, weight in variants:
        model = source_model(settings, args.device)
        history = refine(model, batches, args.refine_steps, keep=args.keep, weight=weight, lr=args.refine_lr) \
            if weight is not None else []
        model.cpu()  # extraction and the measurements below run where the learngene is made
        share = SpectralRegularizer(model, keep=args.keep, weight=1.0).high_frequency_share().item()
        error = rebuild_error(model, args.keep)
        target, _, stored = build_model("front", TARGETS[args.target], settings, {"keep": args.keep}, source=model)
        curve = train_mlm(target.to(args.device), data, settings)
        accuracy = sentiment_accuracy(target, settings, sentiment)
        rows.append({"source": label, "weight": weight, "high_frequency_share": share, "rebuild_error": error,
                     "refine_final_mlm_loss": history[-1]["loss"] if history else None, "learngene_bytes": stored,
                     "curve": curve, "final_loss": curve[-1][1], "sentiment_accuracy": accuracy})
        print(f"{label:16s} share outside block {share:.3f}  rebuild error {error:.3f}  target held-out MLM loss "
              f"{curve[-1][1]:.3f}" + (f"  sentiment {accuracy:.3f}" if accuracy is not None else ""), flush=True)

    table = markdown_table(rows, args, settings)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", "benchmarks/refinement.py", *(argv if argv is not None else sys.argv[1:])]),
              "environment": {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                              "torch": torch.__version__, "transformers": transformers.__version__},
              "settings": asdict(settings), "keep": args.keep, "refine_steps": args.refine_steps,
              "refine_lr": args.refine_lr, "target": args.target, "rows": rows}
    (out / "refinement.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "refinement.md").write_text(table)
    return report


def markdown_table(rows: list[dict], args, settings: Settings) -> str:
    lines = [f"FRONT keep {args.keep:g}; refinement: {args.refine_steps} masked-LM steps at lr {args.refine_lr:g}; "
             f"target {args.target}, {settings.steps} masked-LM steps, then {settings.finetune_steps} sentiment steps.",
             "", "| source | energy outside kept block | rebuild error | target held-out MLM loss | sentiment acc. |",
             "|---|---|---|---|---|"]
    for row in rows:
        accuracy = "–" if row["sentiment_accuracy"] is None else f"{row['sentiment_accuracy']:.3f}"
        lines.append(f"| {row['source']} | {row['high_frequency_share']:.3f} | {row['rebuild_error']:.3f} | "
                     f"{row['final_loss']:.3f} | {accuracy} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
