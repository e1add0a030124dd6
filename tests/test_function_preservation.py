"""Widening that claims to keep the function, checked on what a user sees: the logits.

Every decoder family (GPT-2, Llama, Mistral), tied and untied output heads, HyperCloning (with
and without its symmetry-breaking noise) and FRONT/BoT with ``rescaling="preserve_function"``,
all at twice the width.
"""

import logging

import pytest
import torch
import transformers

from hf_learngene import Learngene

DECODERS = ("gpt2", "llama", "mistral")
WIDER = {"hidden": 32, "heads": 8, "intermediate": 48}  # × 2 of every width below
EXACT = [("hypercloning", {}), ("bot", {"rescaling": "preserve_function"})]


def decoder(family: str, tied: bool, kv_heads: int = 2) -> transformers.PreTrainedModel:
    """A tiny random causal LM: hidden 16, 4 heads (``kv_heads`` key/value heads for Llama and Mistral)."""
    if family == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=97, n_positions=32, n_embd=16, n_layer=2, n_head=4, n_inner=24, tie_word_embeddings=tied,
            bos_token_id=0, eos_token_id=0,
        )
    else:
        config_class = transformers.LlamaConfig if family == "llama" else transformers.MistralConfig
        config = config_class(
            vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=kv_heads,
            intermediate_size=24, max_position_embeddings=32, tie_word_embeddings=tied, bos_token_id=0,
            eos_token_id=0, pad_token_id=0,
        )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def logits(model, ids=None) -> torch.Tensor:
    ids = torch.randint(1, 97, (2, 7), generator=torch.Generator().manual_seed(0)) if ids is None else ids
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def grow(model, method: str, **options) -> transformers.PreTrainedModel:
    learngene = Learngene.extract(model, method=method, show_progress=False, **options)
    return learngene.build(WIDER, auto_class=transformers.AutoModelForCausalLM, show_progress=False)


def scale(after: torch.Tensor, before: torch.Tensor) -> float:
    """The least-squares factor from ``before`` to ``after``."""
    return ((after * before).sum() / (before * before).sum()).item()


@pytest.mark.parametrize("family", DECODERS)
@pytest.mark.parametrize("method,options", EXACT)
def test_an_untied_head_keeps_the_logits(family, method, options):
    source = decoder(family, tied=False)
    grown = grow(source, method, **options)
    assert not grown.config.tie_word_embeddings
    assert torch.allclose(logits(grown), logits(source), atol=1e-5)  # was exactly 2× before the head had a fan-in


@pytest.mark.parametrize("family", DECODERS)
def test_front_keeps_the_logit_scale_of_an_untied_head(family):
    """FRONT resamples by the DCT, not by copies, so the nonlinearities make it close, not exact."""
    source = decoder(family, tied=False)
    before, after = logits(source), logits(grow(source, "front", rescaling="preserve_function"))
    assert scale(after, before) == pytest.approx(1.0, abs=0.02)
    assert ((after - before).norm() / before.norm()).item() < 0.15


@pytest.mark.parametrize("family", DECODERS)
@pytest.mark.parametrize("method,options", EXACT + [("front", {"rescaling": "preserve_function"})])
def test_a_tied_head_stays_tied_gives_k_times_the_logits_and_says_so(family, method, options, caplog):
    """One matrix cannot both embed (no fan-in) and read the doubled hidden vector (fan-in × 2):
    the built model keeps its tie, its logits are 2× the source's (same ranking) and the build warns."""
    source = decoder(family, tied=True)
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        grown = grow(source, method, **options)
    assert grown.config.tie_word_embeddings
    assert grown.get_output_embeddings().weight is grown.get_input_embeddings().weight
    before, after = logits(source), logits(grown)
    if method == "front":
        assert scale(after, before) == pytest.approx(2.0, abs=0.04)
    else:
        assert torch.allclose(after, 2 * before, atol=1e-5)  # the same ranking, a softmax at temperature 1/2
    warnings = [r.getMessage() for r in caplog.records if "tied to the output head" in r.getMessage()]
    assert len(warnings) == 1
    assert "gives logits 2x the source's" in warnings[0] and "build with tie_word_embeddings=False" in warnings[0]


@pytest.mark.parametrize("family", DECODERS)
def test_untying_the_source_before_extracting_keeps_the_logits(family, caplog):
    source = decoder(family, tied=True)
    before = logits(source)
    source.config.tie_word_embeddings = False  # untied by hand before extracting
    head = source.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone())
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        grown = grow(source, "hypercloning")
    assert not [r for r in caplog.records if "tied to the output head" in r.getMessage()]
    assert torch.allclose(logits(grown), before, atol=1e-5)


@pytest.mark.parametrize("family", DECODERS)
@pytest.mark.parametrize("method,options", EXACT)
def test_building_untied_from_a_tied_source_keeps_the_logits(family, method, options):
    """``tie_word_embeddings=False`` at build: the new head is the word embeddings resized as a head
    (scaled for its fan-in), so the grown model computes the source's logits."""
    source = decoder(family, tied=True)
    learngene = Learngene.extract(source, method=method, show_progress=False, **options)
    grown = learngene.build(WIDER, auto_class=transformers.AutoModelForCausalLM, tie_word_embeddings=False,
                            show_progress=False)
    assert grown.get_output_embeddings().weight is not grown.get_input_embeddings().weight
    assert torch.allclose(logits(grown), logits(source), atol=1e-5)


def test_no_warning_when_a_tied_model_shrinks_or_keeps_its_width(caplog):
    source = decoder("llama", tied=True)
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        learngene.build({"hidden": 8, "heads": 2}, show_progress=False)
        learngene.build({"layers": 3}, show_progress=False)
    assert not [r for r in caplog.records if "tied to the output head" in r.getMessage()]


def test_an_untied_bert_masked_lm_head_is_supported_and_keeps_the_logits():
    config = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=24, max_position_embeddings=32, tie_word_embeddings=False)
    torch.manual_seed(0)
    source = transformers.BertForMaskedLM(config).eval()
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    assert learngene.config.roles["cls.predictions.decoder.weight"]["fan_in"] == 16
    grown = learngene.build(WIDER, auto_class=transformers.BertForMaskedLM, show_progress=False)
    assert grown.cls.predictions.decoder.weight is not grown.bert.embeddings.word_embeddings.weight
    assert torch.allclose(logits(grown), logits(source), atol=1e-5)


# ---------------------------------------------------------------------------- HyperCloning's noise


@pytest.mark.parametrize("family", DECODERS)
@pytest.mark.parametrize("snr_db", [20, 0])
def test_hypercloning_noise_keeps_the_logits_exactly(family, snr_db):
    """As in the paper, the noise cancels over the copies each output sums, so only the
    symmetry between copies is broken, never the function."""
    source = decoder(family, tied=False)
    exact, noisy = grow(source, "hypercloning"), grow(source, "hypercloning", snr_db=snr_db)
    assert torch.allclose(logits(noisy), logits(source), atol=1e-5)
    exact_state = exact.state_dict()
    changed = {name for name, tensor in noisy.state_dict().items() if not torch.equal(tensor, exact_state[name])}
    first_mlp = "transformer.h.0.mlp.c_fc.weight" if family == "gpt2" else "model.layers.0.mlp.up_proj.weight"
    assert first_mlp in changed and "lm_head.weight" in changed
    assert all(name.endswith("weight") for name in changed)  # biases, norms: no input to cancel the noise over


def test_hypercloning_noise_differs_per_role_and_layer():
    source = decoder("llama", tied=False, kv_heads=4)  # q, k and v of the same shape
    exact, noisy = grow(source, "hypercloning"), grow(source, "hypercloning", snr_db=20)

    def noise(layer: int, name: str) -> torch.Tensor:
        path = f"model.layers.{layer}.self_attn.{name}.weight"
        return noisy.get_parameter(path) - exact.get_parameter(path)

    def same_draw(a: torch.Tensor, b: torch.Tensor) -> bool:  # equal up to the scale each role's power sets
        return torch.allclose(a / a.norm(), b / b.norm(), atol=1e-4)

    q, k, v = noise(0, "q_proj"), noise(0, "k_proj"), noise(0, "v_proj")
    assert q.shape == k.shape == v.shape
    assert not same_draw(q, k) and not same_draw(k, v) and not same_draw(q, v)
    assert not same_draw(q, noise(1, "q_proj"))
    # the same options give the same model
    assert torch.equal(noisy.model.layers[0].self_attn.q_proj.weight,
                       grow(source, "hypercloning", snr_db=20).model.layers[0].self_attn.q_proj.weight)


def test_building_an_untied_bert_masked_lm_head_from_a_tied_source_keeps_the_logits():
    """BERT's tied decoder shares the word embeddings and the ``cls.predictions.bias``; untied at build,
    the new decoder gets both (its weight resized as a head)."""
    config = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=24, max_position_embeddings=32)
    torch.manual_seed(0)
    source = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():
        source.cls.predictions.bias.normal_()  # a bias that matters
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    grown = learngene.build(WIDER, auto_class=transformers.BertForMaskedLM, tie_word_embeddings=False,
                            show_progress=False)
    assert grown.cls.predictions.decoder.weight is not grown.bert.embeddings.word_embeddings.weight
    assert torch.allclose(logits(grown), logits(source), atol=1e-5)


def test_a_learngene_saved_before_heads_had_a_fan_in_still_keeps_the_logits(tmp_path):
    """Learngenes written before the untied head's fan-in was recorded (``fan_in: null``) decode it
    with the fan-in the table gives."""
    source = decoder("gpt2", tied=False)
    learngene = Learngene.extract(source, method="bot", rescaling="preserve_function", show_progress=False)
    learngene.config.roles["lm_head.weight"]["fan_in"] = None
    grown = learngene.build(WIDER, auto_class=transformers.AutoModelForCausalLM, show_progress=False)
    assert torch.allclose(logits(grown), logits(source), atol=1e-5)


def test_a_bare_untied_source_gives_no_head_from_its_embeddings():
    """A ``LlamaModel`` of an untied checkpoint kept no head; its embeddings are not the head."""
    source = decoder("llama", tied=False)
    learngene = Learngene.extract(source.model, method="bot", show_progress=False)
    built = learngene.build(None, auto_class=transformers.AutoModelForCausalLM, show_progress=False)
    assert not torch.equal(built.lm_head.weight, built.model.embed_tokens.weight)


def test_no_warning_for_a_model_without_an_output_head(caplog):
    """A bare model (``AutoModel``) has no head tied to its embeddings, whatever its config says."""
    source = decoder("llama", tied=True)
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    with caplog.at_level(logging.WARNING, logger="hf_learngene"):
        learngene.build(WIDER, auto_class=transformers.AutoModel, show_progress=False)
    assert not [r for r in caplog.records if "tied to the output head" in r.getMessage()]


def test_preserve_function_keeps_the_function_through_a_grown_head_size():
    """BERT's 4 heads of 4 → 4 heads of 8 with BoT's Haar at this whole ratio: queries and keys take
    2^(-1/4) each, so the attention logits, and the whole function, are kept (without that factor
    every logit was √2 times the source's)."""
    config = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=24, max_position_embeddings=32)
    torch.manual_seed(0)
    source = transformers.BertModel(config).eval()
    with torch.no_grad():  # sharp attention: at init's scale every softmax is nearly uniform whatever its logits
        for layer in source.encoder.layer:
            layer.attention.self.query.weight.mul_(20)
            layer.attention.self.key.weight.mul_(20)
    learngene = Learngene.extract(source, method="bot", rescaling="preserve_function", show_progress=False)
    grown = learngene.build({"hidden": 32, "heads": 4, "intermediate": 48}, auto_class=transformers.AutoModel,
                            show_progress=False).eval()
    ids = torch.randint(1, 97, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = source(input_ids=ids).last_hidden_state, grown(input_ids=ids).last_hidden_state
    assert torch.allclose(after, before.repeat_interleave(2, dim=-1), atol=1e-5)  # Haar: [h0, h0, h1, h1, ...]
