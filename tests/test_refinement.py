"""FRONT's spectral refinement: the regulariser, the Trainer callback and the refine step."""

from types import SimpleNamespace

import pytest
import torch
import transformers
from transformers import TrainerControl, TrainerState

from hf_learngene import Learngene, LearngeneConfigError, SpectralRegularizer, SpectralRegularizerCallback, refine
from hf_learngene.learngene import canonical_state

from conftest import tiny_config, tiny_model


@pytest.fixture
def bert():
    return tiny_model(tiny_config("bert", layers=4, heads=2, head_dim=8, intermediate=32))


def mlm_batches(model, count=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(1, model.config.vocab_size, (4, 12), generator=generator)
        batches.append({"input_ids": ids, "labels": ids})
    return batches


def test_penalty_is_the_share_of_energy_outside_the_block(bert):
    regularizer = SpectralRegularizer(bert, keep=0.5, weight=1.0)
    share = regularizer.high_frequency_share().item()
    assert 0.2 < share < 1.0  # random weights spread their energy over all frequencies
    with torch.no_grad():  # make every weight constant: all energy at the lowest frequency
        for name, tensor in canonical_state(bert, keep_vars=True).items():
            tensor.fill_(0.3)
    assert regularizer.high_frequency_share().item() < 1e-6
    assert SpectralRegularizer(bert, keep=1.0).high_frequency_share().item() == 0.0


def test_gradient_descent_on_the_penalty_smooths_the_weights(bert):
    regularizer = SpectralRegularizer(bert, keep=0.5, weight=1.0)
    before = regularizer.high_frequency_share().item()
    optimizer = torch.optim.SGD(bert.parameters(), lr=5.0)
    for _ in range(20):
        regularizer().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert regularizer.high_frequency_share().item() < 0.8 * before


def test_refine_makes_a_compact_learngene_lose_less(bert):
    def truncation_error(model):
        learngene = Learngene.extract(model, method="front", keep=0.5, show_progress=False)
        rebuilt = canonical_state(learngene.build(None, auto_class=type(model), show_progress=False))
        original = canonical_state(model)
        return sum((rebuilt[k] - original[k]).pow(2).sum().item() for k in learngene.config.roles if "{layer}" not in k)

    plain = tiny_model(tiny_config("bert", layers=4, heads=2, head_dim=8, intermediate=32))
    refine(plain, mlm_batches(plain), steps=30, weight=0.0, lr=1e-3)
    history = refine(bert, mlm_batches(bert), steps=30, weight=50.0, lr=1e-3)
    assert history[-1]["high_frequency_share"] < history[0]["high_frequency_share"]
    assert len(history) == 30 and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert truncation_error(bert) < truncation_error(plain)


def test_trainer_callback(tmp_path):
    def train(callbacks):
        model = tiny_model(tiny_config("bert", layers=4, heads=2, head_dim=8, intermediate=32))
        items = [dict(input_ids=b["input_ids"][i], labels=b["labels"][i]) for b in mlm_batches(model) for i in range(4)]
        args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=4,
                                              learning_rate=3e-3, report_to=[], save_strategy="no", use_cpu=True,
                                              disable_tqdm=True, seed=0)
        transformers.Trainer(model=model, args=args, train_dataset=items, callbacks=callbacks).train()
        return SpectralRegularizer(model, keep=0.5).high_frequency_share().item()

    callback = SpectralRegularizerCallback(keep=0.5, weight=100.0)
    with_penalty, without = train([callback]), train([])
    assert len(callback.history) == 8
    assert with_penalty < without


def test_bad_weight(bert):
    with pytest.raises(ValueError, match="must be ≥ 0"):
        SpectralRegularizer(bert, weight=-1)


@pytest.mark.parametrize("setting", [{"fsdp": "full_shard"}, {"fsdp": True}, {"deepspeed": {"zero_optimization": {"stage": 3}}}])
def test_callback_refuses_fsdp_and_deepspeed(bert, setting):
    """Under FSDP/DeepSpeed the callback's separate backward() would be dropped: it must refuse, not go quiet."""
    args = SimpleNamespace(**{"fsdp": None, "deepspeed": None, **setting})
    callback = SpectralRegularizerCallback(keep=0.5, weight=1.0)
    with pytest.raises(LearngeneConfigError, match="spectral regulariser cannot run under (FSDP|DeepSpeed)"):
        callback.on_train_begin(args, TrainerState(), TrainerControl(), model=bert)
    callback.on_train_begin(SimpleNamespace(fsdp=None, deepspeed=None), TrainerState(), TrainerControl(), model=bert)


def test_regularizer_refuses_an_fsdp_sharded_model(tmp_path):
    """A model under FSDP2 (DTensor shards; one process with gloo suffices) is refused by every entry point."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = tiny_model(tiny_config("bert", layers=2, heads=2, head_dim=8, intermediate=32))
        fully_shard(model, mesh=init_device_mesh("cpu", (1,)))
        with pytest.raises(LearngeneConfigError, match="cannot run under FSDP: it needs every weight whole"):
            SpectralRegularizer(model)
        with pytest.raises(LearngeneConfigError, match="cannot run under FSDP"):
            refine(model, mlm_batches(model), steps=1)
        with pytest.raises(LearngeneConfigError, match="cannot run under FSDP"):
            SpectralRegularizerCallback().on_train_begin(SimpleNamespace(fsdp=None, deepspeed=None), TrainerState(),
                                                         TrainerControl(), model=model)
    finally:
        torch.distributed.destroy_process_group()


def test_a_role_missing_from_the_first_layers_is_penalised_as_stored():
    # ModernBERT's layer 0 has no attention norm: the regulariser stacks the identity there, as extraction does
    config = transformers.ModernBertConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                           num_attention_heads=2, max_position_embeddings=32, pad_token_id=0,
                                           bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
    torch.manual_seed(0)
    model = transformers.ModernBertForMaskedLM(config)
    regularizer = SpectralRegularizer(model, keep=0.5, weight=1.0)
    penalty = regularizer()
    assert torch.isfinite(penalty) and penalty > 0
    penalty.backward()
    assert model.model.layers[1].attn_norm.weight.grad is not None
