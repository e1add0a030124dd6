"""The real pretrained MiniLM (all-MiniLM-L6-v2) through both methods, at every BERT size."""

import pytest
import torch
import transformers

import hf_learngene
from hf_learngene import Learngene

SIZES = ["tiny", "mini", "small", "medium", "base", {"layers": 3, "hidden": 192, "heads": 3}]


def test_source_size_is_exact(minilm_learngene, minilm_model):
    rebuilt = hf_learngene.AutoModel.from_learngene(minilm_learngene, show_progress=False)
    assert type(rebuilt) is transformers.BertModel
    source = minilm_model.state_dict()
    errors = {name: (rebuilt.state_dict()[name] - tensor).abs().max().item() for name, tensor in source.items()}
    assert len(errors) == 103 and max(errors.values()) <= 1e-5


@pytest.mark.parametrize("size", SIZES, ids=lambda s: s if isinstance(s, str) else "custom-3L-192H-3heads")
def test_every_bert_size_builds_and_runs(minilm_learngene, size):
    model = hf_learngene.AutoModelForSequenceClassification.from_learngene(
        minilm_learngene, size, num_labels=2, show_progress=False
    )
    assert type(model) is transformers.BertForSequenceClassification
    expected = minilm_learngene.architecture.presets[size] if isinstance(size, str) else size
    assert model.config.num_hidden_layers == expected["layers"]
    assert model.config.hidden_size == expected["hidden"]
    assert model.config.num_attention_heads == expected["heads"]
    batch = minilm_learngene.processor(["a fine film", "a dull one"], return_tensors="pt", padding=True)
    out = model(**batch, labels=torch.tensor([1, 0]))
    out.loss.backward()
    assert out.logits.shape == (2, 2) and torch.isfinite(out.loss)
    # the task head is freshly initialised with the model's own scheme, not left empty
    assert 0.005 < model.classifier.weight.std().item() < 0.05


def test_built_model_saves_and_loads_with_plain_transformers(minilm_learngene, tmp_path):
    model = hf_learngene.AutoModelForMaskedLM.from_learngene(minilm_learngene, "mini", show_progress=False)
    model.save_pretrained(tmp_path)
    loaded, info = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert type(loaded) is transformers.BertForMaskedLM
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    # the LM decoder stays tied to the word embeddings
    assert loaded.cls.predictions.decoder.weight.data_ptr() == loaded.bert.embeddings.word_embeddings.weight.data_ptr()


def test_head_size_follows_the_target(minilm_learngene):
    # MiniLM's heads are 32 wide; BERT-tiny's are 64: the per-head axis is resized on its own
    model = hf_learngene.AutoModel.from_learngene(minilm_learngene, "tiny", show_progress=False)
    query = model.encoder.layer[0].attention.self.query.weight
    assert query.shape == (128, 128) and model.config.num_attention_heads == 2


def test_save_load_roundtrip_keeps_everything(minilm_learngene, tmp_path):
    minilm_learngene.save_pretrained(tmp_path / "lg")
    assert sorted(p.name for p in (tmp_path / "lg").iterdir()) == [
        "config.json", "learngene.safetensors", "tokenizer.json", "tokenizer_config.json"
    ]
    loaded = Learngene.from_pretrained(tmp_path / "lg")
    assert loaded.config.method == minilm_learngene.config.method
    for name, tensor in minilm_learngene.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert loaded.processor("hello")["input_ids"] == minilm_learngene.processor("hello")["input_ids"]
    a = hf_learngene.AutoModel.from_learngene(loaded, "mini", show_progress=False).state_dict()
    b = hf_learngene.AutoModel.from_learngene(tmp_path / "lg", "mini", show_progress=False).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compact_front_learngene(minilm_dir, tmp_path):
    learngene = Learngene.extract(minilm_dir, method="front", keep={"hidden": 0.5, "intermediate": 0.5},
                                  show_progress=False)
    info = learngene.summary()
    assert info["compression"] > 1.9
    learngene.save_pretrained(tmp_path)
    full = Learngene.extract(minilm_dir, method="front", show_progress=False)
    full.save_pretrained(tmp_path / "full")
    assert (tmp_path / "learngene.safetensors").stat().st_size < 0.55 * (tmp_path / "full" / "learngene.safetensors").stat().st_size
    model = hf_learngene.AutoModel.from_learngene(tmp_path, "mini", show_progress=False)
    assert model.config.hidden_size == 256


def test_learngene_is_trainable(minilm_learngene):
    # the learngene is a PreTrainedModel whose parameters are the stored coefficients
    assert isinstance(minilm_learngene, transformers.PreTrainedModel)
    assert sum(p.numel() for p in minilm_learngene.parameters()) == minilm_learngene.summary()["stored_values"]
    assert all(p.requires_grad for p in minilm_learngene.parameters())


def test_dtype_and_device(minilm_learngene):
    model = hf_learngene.AutoModel.from_learngene(
        minilm_learngene, "tiny", dtype=torch.bfloat16, device="cpu", show_progress=False
    )
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    model = hf_learngene.AutoModel.from_learngene(minilm_learngene, "tiny", torch_dtype="float16", show_progress=False)
    assert {p.dtype for p in model.parameters()} == {torch.float16}


def test_question_answering_and_masked_lm_heads(minilm_learngene):
    qa = hf_learngene.AutoModelForQuestionAnswering.from_learngene(minilm_learngene, "tiny", show_progress=False)
    assert type(qa) is transformers.BertForQuestionAnswering
    batch = minilm_learngene.processor("who?", "a context", return_tensors="pt")
    out = qa(**batch, start_positions=torch.tensor([1]), end_positions=torch.tensor([2]))
    out.loss.backward()
    mlm = hf_learngene.AutoModelForMaskedLM.from_learngene(minilm_learngene, "tiny", show_progress=False)
    assert mlm(**batch).logits.shape[-1] == 30522
