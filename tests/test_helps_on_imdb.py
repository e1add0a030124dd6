"""It helps, measured: MiniLM → 4 layers / hidden 256 through each method, fine-tuned on IMDB
reviews for a fixed small budget, beats the same architecture from random init trained
identically, on held-out reviews, with each method's default rescaling (``auto``). The harness is
``benchmarks/imdb_finetune.py``."""

import pytest
import transformers

from imdb_finetune import Budget, build, fine_tune_and_evaluate, load_imdb, minilm_path

TARGET = {"layers": 4, "hidden": 256, "heads": 4}


@pytest.mark.slow
def test_learngene_beats_random_init():
    budget = Budget()
    data = load_imdb(transformers.AutoTokenizer.from_pretrained(minilm_path()), budget)
    accuracy = {
        name: fine_tune_and_evaluate(build(method, "auto", TARGET, budget.seed), data, budget)
        for name, method in (("random", None), ("front", "front"), ("bot", "bot"))
    }
    print(f"\nheld-out IMDB accuracy, {budget}: {accuracy}")
    for method in ("front", "bot"):
        assert accuracy[method] > accuracy["random"] + 0.1, accuracy
