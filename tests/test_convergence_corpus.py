"""The convergence benchmark's texts: one corpus only, train and held-out disjoint, and the
downstream check's labelled CSVs disjoint too."""

import csv
import math

import pytest
import torch
import transformers

import convergence
from conftest import minilm_path


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(minilm_path())


def test_rotten_tomatoes_rows_only():
    rows = convergence.corpus_rows("rotten_tomatoes")
    assert len(rows) == 8530 and {row["source"] for row in rows} == {"rotten_tomatoes"}
    with pytest.raises(ValueError, match="unknown corpus"):
        convergence.corpus_rows("sst2")


def test_masked_reviews_train_and_heldout_are_disjoint_rotten_tomatoes(tokenizer):
    settings = convergence.Settings(corpus="rotten_tomatoes", train_reviews=300, heldout_reviews=60, max_length=64)
    data = convergence.MaskedReviews(tokenizer, settings)
    rotten = {row["text"] for row in convergence.corpus_rows("rotten_tomatoes")}
    imdb = {row["text"] for row in convergence.corpus_rows("imdb")}
    assert (len(data.train_texts), len(data.heldout_texts)) == (300, 60)
    assert set(data.train_texts) <= rotten and set(data.heldout_texts) <= rotten
    assert not (set(data.train_texts) | set(data.heldout_texts)) & imdb
    assert not set(data.train_texts) & set(data.heldout_texts)
    assert data.train["input_ids"].shape[0] == 300 and data.heldout["input_ids"].shape[0] == 60
    # the plateau lies below uniform guessing over the vocabulary
    assert 0 < data.unigram_plateau < math.log(len(tokenizer))
    # a budget the corpus cannot hold is refused before any training
    with pytest.raises(SystemExit, match="corpus has 8530"):
        convergence.MaskedReviews(tokenizer, convergence.Settings(corpus="rotten_tomatoes", train_reviews=8400,
                                                                 heldout_reviews=256))


def test_labelled_csvs_are_disjoint_and_of_the_corpus(tmp_path):
    settings = convergence.Settings(corpus="rotten_tomatoes", finetune_steps=5, batch=8, finetune_eval_reviews=30)
    train, validation = convergence.write_labelled_csvs(settings, tmp_path)
    read = lambda path: list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    train_rows, validation_rows = read(train), read(validation)
    assert (len(train_rows), len(validation_rows)) == (40, 30)
    assert set(train_rows[0]) == {"text", "label"}
    assert {row["label"] for row in train_rows + validation_rows} == {"0", "1"}
    rotten = {row["text"] for row in convergence.corpus_rows("rotten_tomatoes")}
    texts = lambda part: {row["text"] for row in part}
    assert texts(train_rows) <= rotten and texts(validation_rows) <= rotten
    assert not texts(train_rows) & texts(validation_rows)


def test_masked_lm_loss_equals_the_models_own_loss(tokenizer):
    """The benchmark scores only the labelled tokens with the vocabulary head; the value is the model's loss."""
    settings = convergence.Settings(corpus="rotten_tomatoes", train_reviews=40, heldout_reviews=8, max_length=32,
                                    batch=4)
    data = convergence.MaskedReviews(tokenizer, settings)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64)
    model = transformers.BertForMaskedLM(config).eval()
    for step in range(3):
        batch = data.batch(step)
        assert (batch["labels"] != -100).any()
        ours, theirs = convergence.masked_lm_loss(model, batch), model(**batch).loss
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_bf16_masked_lm_loss_is_autocast_and_close_to_float32(tokenizer):
    """Under ``precision="bf16"`` the encoder's matmuls run in bfloat16 and MiniLM's loss (its pretrained
    encoder, a new MLM head) moves by rounding only; the loss itself is float32; a typo is refused."""
    settings = convergence.Settings(train_reviews=40, heldout_reviews=8, max_length=32, batch=4)
    data = convergence.MaskedReviews(tokenizer, settings)
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM.from_pretrained(minilm_path()).eval()
    seen = []
    model.bert.encoder.layer[0].intermediate.dense.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    batch = data.batch(0)
    with torch.no_grad():
        full, half = (convergence.masked_lm_loss(model, batch, precision) for precision in ("fp32", "bf16"))
    assert seen == [torch.float32, torch.bfloat16]
    assert half.dtype == torch.float32 and not torch.equal(full, half)
    assert torch.allclose(full, half, rtol=1e-3)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        convergence.masked_lm_loss(model, batch, "fp16")
