"""Vision convergence: a small ViT trained on Fashion-MNIST as the source, then shrunk and grown.

No pretrained ViT installs offline, so the source is trained here: a 6-layer, hidden-192,
3-head ViT (28×28 grey images, 4×4 patches) on Fashion-MNIST (Debian ``dataset-fashion-mnist``,
read from ``/usr/share/datasets/fashion-mnist``). Every target is then built with every
applicable method and trained with the same data order, seed, schedule and step budget; test
accuracy is evaluated along the way. Reported per method: final test accuracy, the first
evaluated step that reaches random init's final accuracy, and the fraction of steps saved.

    python benchmarks/convergence_vision.py            # full run
    python benchmarks/convergence_vision.py --quick    # a few minutes

Outputs: ``convergence_vision.json``, ``.png`` and ``.md`` in ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers.utils import logging

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
from convergence import METHODS, add_savings, plot  # noqa: E402
from image_data import load_fashion_mnist  # noqa: E402

logging.set_verbosity_error()
logging.disable_progress_bar()

SOURCE = {"num_hidden_layers": 6, "hidden_size": 192, "num_attention_heads": 3, "intermediate_size": 768}
TARGETS = {
    "shrink 4L/96/3H": {"layers": 4, "hidden": 96, "heads": 3},
    "grow 12L/384/6H": {"layers": 12, "hidden": 384, "heads": 6},
}


@dataclass(frozen=True)
class Settings:
    source_steps: int = 1500
    steps: int = 600
    batch: int = 64
    lr: float = 1e-3
    warmup: float = 0.1
    eval_every: int = 50
    test_images: int = 2000
    seed: int = 0


QUICK = Settings(source_steps=150, steps=60, batch=32, eval_every=20, test_images=500)


def vit_config() -> transformers.ViTConfig:
    config = transformers.ViTConfig(image_size=28, patch_size=4, num_channels=1, num_labels=10, **SOURCE)
    config.architectures = []
    return config


def train(model, data, settings: Settings, steps: int, test=None) -> list[tuple[int, float]]:
    """AdamW with warmup and linear decay over ``steps``; test accuracy every ``eval_every`` steps."""
    images, labels = data
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.05)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(settings.warmup * steps), steps)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(settings.seed))
    curve = [(0, accuracy(model, test))] if test is not None else []
    model.train()
    for step in range(steps):
        batch = order[torch.arange(step * settings.batch, (step + 1) * settings.batch) % len(order)]
        model(pixel_values=images[batch], labels=labels[batch]).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if test is not None and ((step + 1) % settings.eval_every == 0 or step + 1 == steps):
            curve.append((step + 1, accuracy(model, test)))
    return curve


@torch.no_grad()
def accuracy(model, test) -> float:
    model.eval()
    images, labels = test
    predictions = torch.cat([model(pixel_values=images[i:i + 500]).logits.argmax(-1) for i in range(0, len(labels), 500)])
    model.train()
    return (predictions == labels).float().mean().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--methods", nargs="+", choices=METHODS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    methods = tuple(args.methods or (("random", "front", "bot") if args.quick else METHODS))
    if "random" not in methods:
        methods = ("random",) + methods

    train_data = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    test = (test_images[: settings.test_images], test_labels[: settings.test_images])
    torch.manual_seed(settings.seed)
    source = transformers.ViTForImageClassification(vit_config())
    start = time.perf_counter()
    train(source, train_data, settings, settings.source_steps)
    source_accuracy = accuracy(source, test)
    print(f"source ViT 6L/192/3H: test accuracy {source_accuracy:.3f} after {settings.source_steps} steps "
          f"({time.perf_counter() - start:.0f}s)", flush=True)

    results = {}
    for target_name, target in TARGETS.items():
        rows = []
        for method in methods:
            learngene = Learngene.extract(source, method=method, show_progress=False)
            torch.manual_seed(settings.seed)
            try:
                model = hf_learngene.AutoModelForImageClassification.from_learngene(
                    learngene, target, num_labels=10, show_progress=False
                )
            except LearngeneConfigError as error:
                rows.append({"method": method, "applicable": False, "reason": str(error)})
                print(f"[{target_name}] {method}: n/a", flush=True)
                continue
            begin = time.perf_counter()
            curve = train(model, train_data, settings, settings.steps, test)
            rows.append({"method": method, "applicable": True, "curve": curve, "final_accuracy": curve[-1][1],
                         "seconds": time.perf_counter() - begin})
            print(f"[{target_name}] {method}: test accuracy {curve[0][1]:.3f} → {curve[-1][1]:.3f}", flush=True)
        add_savings(rows, settings.steps, higher_is_better=True)
        results[target_name] = {"target": target, "rows": rows}

    lines = [f"Fashion-MNIST test accuracy after {settings.steps} steps (batch {settings.batch}, lr {settings.lr:g}) from a "
             f"6L/192/3H ViT source trained {settings.source_steps} steps (test accuracy {source_accuracy:.3f}).", "",
             "| target | method | final accuracy | steps to random's final | steps saved |", "|---|---|---|---|---|"]
    for target_name, result in results.items():
        for row in result["rows"]:
            if not row["applicable"]:
                lines.append(f"| {target_name} | {row['method']} | n/a | n/a | n/a |")
                continue
            reached, saved = row["steps_to_random_final"], row["steps_saved"]
            lines.append(f"| {target_name} | {row['method']} | {row['final_accuracy']:.3f} | "
                         f"{'not reached' if reached is None else reached} | {'–' if saved is None else f'{saved:.0%}'} |")
    table = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "convergence_vision_quick" if args.quick else "convergence_vision"
    report = {"command": " ".join(["python", "benchmarks/convergence_vision.py", *(argv if argv is not None else sys.argv[1:])]),
              "settings": asdict(settings), "source_accuracy": source_accuracy, "results": results}
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    if not args.no_plot:
        plot(results, out / f"{stem}.png", ylabel="test accuracy")
    print(table)
    return report


if __name__ == "__main__":
    main()
