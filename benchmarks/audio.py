"""PIPMN on drum sounds: accuracy under grouped k-fold, parameters and CPU throughput against a small
AST and a small CNN, plus PIPMN built at another width from a trained PIPMN's learngene.

Data: the Debian ``hydrogen-drumkits`` package (``apt-get install hydrogen-drumkits``), every sample
whose instrument maps to a drum class (kick, snare, hi-hat, tom, cymbal, clap, hand percussion);
k folds such that no kit has samples in two folds. All models read the same features (log-mel by
default, 399 frames × 100, from ``PIPMNFeatureExtractor``) and train the same number of steps with
AdamW and label smoothing 0.1; each fold is scored after its last step.

* ``pipmn``: the paper's widths (100→400→800→400→100), lr 1e-3, weight decay 0.05 (the paper's);
* ``ast``: ``ASTForAudioClassification`` from a config, no pretraining (4 layers, hidden 192,
  3 heads, 16×16 patches without overlap), lr 3e-4, weight decay 0.05;
* ``cnn``: three stride-2 conv blocks (16, 32, 64 channels; batch norm) and a linear head, lr 1e-3.

Throughput is the model's forward pass on batches of 32 precomputed feature maps on the CPU
(``--threads``), measured interleaved over repeats in this run; the table gives the median and
each model's ratio to AST. The learngene part, on every fold, trains a PIPMN (the paper's widths)
for ``--source_steps`` on the fold's training clips, extracts FRONT and BoT learngenes, builds PIPMNs
of other widths and trains them and random-init twins for ``--steps``, recording test accuracy
every ``--eval_every`` steps; the curves are averaged over the folds, and the table gives the steps
each initialisation needs to reach random init's final (fold-averaged) accuracy.

    python benchmarks/audio.py            # the full run (about 20 minutes on 2 CPU cores)
    python benchmarks/audio.py --quick    # a few minutes

Outputs ``audio.json`` (with the command line) and ``audio.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from transformers import ASTConfig, ASTForAudioClassification

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
from audio_data import featurize, grouped_folds, load_drumkits  # noqa: E402

import hf_learngene  # noqa: E402
from hf_learngene import Learngene, PIPMNConfig, PIPMNFeatureExtractor, PIPMNForAudioClassification  # noqa: E402


class SmallCNN(nn.Module):
    """A plain 2-D CNN over (frames, features): the conventional small baseline."""

    def __init__(self, num_labels: int, label_smoothing: float = 0.1):
        super().__init__()
        blocks = []
        for c_in, c_out in ((1, 16), (16, 32), (32, 64)):
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(64, num_labels)
        self.label_smoothing = label_smoothing

    def forward(self, input_features, labels=None):
        logits = self.head(self.body(input_features[:, None]))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels,
                                                                         label_smoothing=self.label_smoothing)
        return type("Output", (), {"loss": loss, "logits": logits})


class ASTClassifier(nn.Module):
    """AST from a config (no pretraining), on the same (frames, features) maps."""

    def __init__(self, num_labels: int, frames: int, features: int):
        super().__init__()
        config = ASTConfig(hidden_size=192, num_hidden_layers=4, num_attention_heads=3, intermediate_size=768,
                           num_mel_bins=features, max_length=frames, frequency_stride=16, time_stride=16,
                           num_labels=num_labels)
        self.ast = ASTForAudioClassification(config)

    def forward(self, input_features, labels=None):
        logits = self.ast(input_values=input_features).logits
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
        return type("Output", (), {"loss": loss, "logits": logits})


def make_model(kind: str, num_labels: int, frames: int, features: int, channels=(400, 800)) -> nn.Module:
    if kind == "pipmn":
        return PIPMNForAudioClassification(PIPMNConfig(num_features=features, encoder_channels=list(channels),
                                                       num_labels=num_labels))
    if kind == "ast":
        return ASTClassifier(num_labels, frames, features)
    return SmallCNN(num_labels)


LEARNING_RATES = {"pipmn": 1e-3, "ast": 3e-4, "cnn": 1e-3}


def accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(input_features=features[i:i + 256]).logits.argmax(-1)
                                 for i in range(0, len(features), 256)])
    model.train()
    return (predictions == labels).float().mean().item()


def fit(model, kind, train_x, train_y, test_x, test_y, steps: int, batch: int, seed: int, eval_every: int = 0):
    """AdamW with linear warmup (5%) and decay; returns test accuracy after every ``eval_every`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATES[kind], weight_decay=0.05)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    generator = torch.Generator().manual_seed(seed)
    curve = []
    model.train()
    for step in range(steps):
        index = torch.randint(0, len(train_x), (batch,), generator=generator)
        loss = model(input_features=train_x[index], labels=train_y[index]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if eval_every and (step + 1) % eval_every == 0:
            curve.append((step + 1, accuracy(model, test_x, test_y)))
    return curve or [(steps, accuracy(model, test_x, test_y))]


def throughput(models: dict[str, nn.Module], sample: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median clips/s of each model's forward on ``sample``, measured interleaved."""
    times = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():
            model.eval()
            model(input_features=sample)  # warm-up
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(input_features=sample)
                times[name].append(time.perf_counter() - start)
    return {name: len(sample) / statistics.median(values) for name, values in times.items()}


def steps_to(curve, target: float) -> int | None:
    return next((step for step, value in curve if value >= target), None)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--feature_type", default="log_mel", choices=("log_mel", "mfcc", "five_cepstra"))
    parser.add_argument("--models", nargs="+", default=["pipmn", "ast", "cnn"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--eval_every", type=int, default=25)
    parser.add_argument("--widths", nargs="+", default=["200,400", "800,1600"], help="learngene targets")
    parser.add_argument("--source_steps", type=int, default=900, help="training of the PIPMN the learngenes come from")
    parser.add_argument("--parts", nargs="+", default=["models", "learngene"], choices=("models", "learngene"),
                        help="what to run; a part left out is kept from the results already in --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="out/audio_features")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.folds, args.steps, args.repeats, args.eval_every, args.source_steps = 3, 40, 3, 10, 80
        args.widths = args.widths[:1]
    torch.set_num_threads(args.threads)

    data = load_drumkits()
    extractor = PIPMNFeatureExtractor(feature_type=args.feature_type)
    features, kept, skipped = featurize(data, extractor, cache=Path(args.cache))
    labels = torch.tensor([data.labels[i] for i in kept])
    groups = [data.groups[i] for i in kept]
    folds = grouped_folds(groups, args.folds, seed=args.seed)
    frames, width = features.shape[1:]
    num_labels = len(data.classes)
    print(f"{len(kept)} clips, {num_labels} classes, {len(set(groups))} kits, {skipped} unreadable skipped", flush=True)

    def split(test):
        mask = torch.zeros(len(kept), dtype=torch.bool)
        mask[test] = True
        return features[~mask], labels[~mask], features[mask], labels[mask]

    stem = "audio_quick" if args.quick else "audio"
    previous = Path(args.out) / f"{stem}.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    results.setdefault("models", {})
    for kind in args.models if "models" in args.parts else []:
        fold_accuracy = []
        for index, test in enumerate(folds):
            torch.manual_seed(args.seed + index)
            model = make_model(kind, num_labels, frames, width)
            train_x, train_y, test_x, test_y = split(test)
            fold_accuracy.append(fit(model, kind, train_x, train_y, test_x, test_y, args.steps, args.batch,
                                     args.seed + index)[-1][1])
            print(f"{kind} fold {index}: {fold_accuracy[-1]:.4f}", flush=True)
        results["models"][kind] = {
            "parameters": sum(p.numel() for p in make_model(kind, num_labels, frames, width).parameters()),
            "fold_accuracy": fold_accuracy, "accuracy_mean": statistics.mean(fold_accuracy),
            "accuracy_std": statistics.stdev(fold_accuracy) if len(fold_accuracy) > 1 else 0.0,
        }
    if "models" in args.parts:
        torch.manual_seed(args.seed)
        speed = throughput({kind: make_model(kind, num_labels, frames, width) for kind in args.models},
                           features[:32], args.repeats)
        for kind, clips_per_second in speed.items():
            results["models"][kind]["clips_per_second"] = clips_per_second
            if "ast" in speed:
                results["models"][kind]["throughput_vs_ast"] = clips_per_second / speed["ast"]
    if "learngene" in args.parts:
        results["learngene"] = learngene_runs(args, [split(test) for test in folds], num_labels, frames, width)
    command = " ".join(["python", "benchmarks/audio.py", *(argv if argv is not None else sys.argv[1:])])
    results["commands"] = [*results.get("commands", [results["command"]] if "command" in results else []), command]
    results.update(command=command,
                   clips=len(kept), classes=data.classes, kits=sorted(set(groups)), skipped_unreadable=skipped,
                   left_out=data.left_out, settings=vars(args))
    write(results, Path(args.out), stem)
    return results


def learngene_runs(args, folds, num_labels, frames, width) -> dict:
    """On every fold: a trained PIPMN's FRONT/BoT learngenes at other widths vs random init, same steps."""
    out = {"source_accuracy": [], "targets": {}}
    per_fold: dict[str, dict[str, list]] = {text: {init: [] for init in ("random", "front", "bot")} for text in args.widths}
    for index, (train_x, train_y, test_x, test_y) in enumerate(folds):
        torch.manual_seed(args.seed + index)
        source = make_model("pipmn", num_labels, frames, width)
        fit(source, "pipmn", train_x, train_y, test_x, test_y, args.source_steps, args.batch, args.seed + index)
        out["source_accuracy"].append(accuracy(source, test_x, test_y))
        learngenes = {m: Learngene.extract(source, method=m, show_progress=False) for m in ("front", "bot")}
        for text in args.widths:
            channels = [int(c) for c in text.split(",")]
            for init in ("random", "front", "bot"):
                torch.manual_seed(args.seed + 100 + index)
                if init == "random":
                    model = make_model("pipmn", num_labels, frames, width, channels)
                else:
                    model = hf_learngene.AutoModelForAudioClassification.from_learngene(
                        learngenes[init], {"channels": channels}, num_labels=num_labels, show_progress=False)
                per_fold[text][init].append(fit(model, "pipmn", train_x, train_y, test_x, test_y, args.steps,
                                                args.batch, args.seed + 100 + index, eval_every=args.eval_every))
        print(f"learngene fold {index}: source accuracy {out['source_accuracy'][-1]:.3f}", flush=True)
    for text, inits in per_fold.items():
        mean_curves = {init: [(step, statistics.mean(curve[i][1] for curve in curves))
                              for i, (step, _) in enumerate(curves[0])] for init, curves in inits.items()}
        target = mean_curves["random"][-1][1]
        out["targets"][text] = {
            "mean_curves": mean_curves, "fold_curves": inits, "target_accuracy": target,
            "final_accuracy": {init: curve[-1][1] for init, curve in mean_curves.items()},
            "steps_to_target": {init: steps_to(curve, target) for init, curve in mean_curves.items()},
        }
        print(f"width {text}: final accuracy " + ", ".join(f"{k} {v[-1][1]:.3f}" for k, v in mean_curves.items())
              + "; steps to random's final: " + str(out["targets"][text]["steps_to_target"]), flush=True)
    return out


def write(results: dict, out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    models = results["models"]
    lines = [f"Drum sounds of hydrogen-drumkits: {results['clips']} clips, {len(results['classes'])} classes, "
             f"{len(results['kits'])} kits, {results['settings']['folds']}-fold CV with no kit in two folds; "
             f"{results['settings']['steps']} steps of batch {results['settings']['batch']} per fold.", "",
             "| model | parameters | accuracy (mean ± std) | clips/s (CPU, batch 32) | throughput vs AST |",
             "|---|---|---|---|---|"]
    for kind, row in models.items():
        ratio = f"{row['throughput_vs_ast']:.1f}×" if "throughput_vs_ast" in row else "–"
        lines.append(f"| {kind} | {row['parameters']:,} | {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f} | "
                     f"{row['clips_per_second']:.0f} | {ratio} |")
    learngene = results["learngene"]
    source = statistics.mean(learngene["source_accuracy"])
    lines += ["", f"Learngene: a PIPMN 400/800 trained {results['settings']['source_steps']} steps per fold (mean test "
                  f"accuracy {source:.3f}), rebuilt at other widths; fold-averaged accuracy after "
                  f"{results['settings']['steps']} steps, and the steps to reach random init's final accuracy", "",
              "| widths | random | front | bot | steps: random | front | bot |", "|---|---|---|---|---|---|---|"]
    for text, row in learngene["targets"].items():
        steps, final = row["steps_to_target"], row["final_accuracy"]
        lines.append(f"| {text} | " + " | ".join(f"{final[k]:.3f}" for k in ("random", "front", "bot")) + " | "
                     + " | ".join(str(steps[k]) if steps[k] is not None else "not reached"
                                  for k in ("random", "front", "bot")) + " |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
