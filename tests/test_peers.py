"""The peer methods behind the same interface: weight selection, HyperCloning, stacking, random."""

import pytest
import torch
import transformers

import hf_learngene
from hf_learngene import Learngene, LearngeneConfigError
from hf_learngene.methods.weight_selection import selected_indices

from conftest import tiny_config, tiny_model

torch.set_grad_enabled(True)


def hidden_states(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True).hidden_states[-1]


@pytest.fixture(scope="module")
def bert():
    return tiny_model(tiny_config("bert", layers=4, heads=4, head_dim=4, intermediate=32))


def test_weight_selection_picks_every_kth_element_and_first_layers(bert):
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    assert learngene.config.rescaling == "none"
    small = learngene.build({"layers": 2, "hidden": 8, "heads": 2, "intermediate": 16}, auto_class=type(bert),
                            show_progress=False)
    rows = torch.arange(0, 32, 2)  # intermediate 32 → 16: every 2nd, as in the paper
    cols = torch.arange(0, 16, 2)  # hidden 16 → 8
    source = bert.bert.encoder.layer[1].intermediate.dense.weight
    assert torch.equal(small.bert.encoder.layer[1].intermediate.dense.weight, source[rows][:, cols])
    flat = torch.arange(0, 16, 2)  # heads × head_dim is one flat axis: 4 × 4 → 2 × 4, the same for q, k, v, o
    layer, source_layer = small.bert.encoder.layer[0].attention, bert.bert.encoder.layer[0].attention
    for name in ("query", "key", "value"):
        expected = getattr(source_layer.self, name).weight[flat][:, cols]
        assert torch.equal(getattr(layer.self, name).weight, expected)
    assert torch.equal(layer.output.dense.weight, source_layer.output.dense.weight[cols][:, flat])


def test_weight_selection_keeps_the_same_elements_in_gpt2s_fused_qkv_and_output():
    source = tiny_model(tiny_config("gpt2", layers=2, heads=4, head_dim=4, intermediate=32))
    learngene = Learngene.extract(source, method="weight_selection", show_progress=False)
    small = learngene.build({"hidden": 8, "heads": 2}, auto_class=type(source), show_progress=False)
    flat = cols = torch.arange(0, 16, 2)  # heads × head_dim 16 → 8, hidden 16 → 8
    qkv = torch.cat([block * 16 + flat for block in range(3)])  # the same elements of q, k and v
    attention, source_attention = small.transformer.h[1].attn, source.transformer.h[1].attn
    assert torch.equal(attention.c_attn.weight, source_attention.c_attn.weight[cols][:, qkv])  # Conv1D: in × out
    assert torch.equal(attention.c_proj.weight, source_attention.c_proj.weight[flat][:, cols])


def test_weight_selection_takes_every_kth_index_at_whole_ratios_only():
    assert torch.equal(selected_indices(384, 192), torch.arange(0, 384, 2))  # a rounded linspace took odd ones too
    assert torch.equal(selected_indices(12, 4), torch.tensor([0, 3, 6, 9]))
    assert torch.equal(selected_indices(16, 12), torch.linspace(0, 15, 12).round().long())
    assert torch.equal(selected_indices(5, 5), torch.arange(5))


def test_weight_selection_allows_fewer_larger_heads(bert):
    """12 × 32 → 4 × 64 in MiniLM terms: the flat head dimension shrinks though the head size grows."""
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    small = learngene.build({"hidden": 12, "heads": 2, "intermediate": 16}, auto_class=type(bert), show_progress=False)
    assert small.config.num_attention_heads == 2 and small.config.hidden_size // 2 == 6  # head size 4 → 6
    flat, cols = torch.linspace(0, 15, 12).round().long(), torch.linspace(0, 15, 12).round().long()
    value = bert.bert.encoder.layer[2].attention.self.value.weight
    assert torch.equal(small.bert.encoder.layer[2].attention.self.value.weight, value[flat][:, cols])
    output = bert.bert.encoder.layer[2].attention.output.dense.weight
    assert torch.equal(small.bert.encoder.layer[2].attention.output.dense.weight, output[cols][:, flat])


def test_weight_selection_uniform_layers(bert):
    learngene = Learngene.extract(bert, method="weight_selection", layers="uniform", show_progress=False)
    small = learngene.build({"layers": 2}, auto_class=type(bert), show_progress=False)  # layers 0 and 2 of 4
    assert torch.equal(small.bert.encoder.layer[1].output.dense.weight, bert.bert.encoder.layer[2].output.dense.weight)


def llama(heads: int, kv_heads: int, head_dim: int, seed: int = 0) -> transformers.LlamaForCausalLM:
    config = transformers.LlamaConfig(
        vocab_size=97, hidden_size=heads * head_dim, num_hidden_layers=2, num_attention_heads=heads,
        num_key_value_heads=kv_heads, intermediate_size=24, max_position_embeddings=32, bos_token_id=0,
        eos_token_id=0, pad_token_id=0,
    )
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config)


def head_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """A projection's output rows as (head, head_dim, in)."""
    return weight.reshape(heads, -1, weight.shape[-1])


@pytest.mark.parametrize(
    "source,target,q_heads,kv_heads",
    [
        ((8, 4, 8), (4, 2, 4), [0, 1, 4, 5], [0, 2]),  # GQA, 2 query heads per kv head: whole groups are kept
        ((8, 2, 8), (4, 1, 8), [0, 1, 2, 3], [0]),  # 4 per kv head
        ((4, 4, 8), (2, 2, 8), [0, 2], [0, 2]),  # multi-head attention, 4 → 2 heads
        ((6, 3, 4), (4, 2, 4), [0, 1, 4, 5], [0, 2]),  # non-whole ratio: rounded linspace of kv heads
    ],
)
def test_weight_selection_keeps_llama_heads_whole_and_with_their_kv_heads(source, target, q_heads, kv_heads):
    """Every role of a target head comes from the same source head (q, k rows per rotary half;
    v rows; o columns), and every target query head keeps its source head's key/value head."""
    (heads, kv, head_dim), (t_heads, t_kv, t_head_dim) = source, target
    model = llama(heads, kv, head_dim)
    learngene = Learngene.extract(model, method="weight_selection", show_progress=False)
    small = learngene.build({"hidden": t_heads * t_head_dim, "heads": t_heads, "kv_heads": t_kv},
                            auto_class=transformers.LlamaForCausalLM, show_progress=False)
    assert (small.config.num_attention_heads, small.config.num_key_value_heads) == (t_heads, t_kv)
    group, t_group = heads // kv, t_heads // t_kv
    for t_head, s_head in enumerate(q_heads):  # the kv head serving each target q head is its source head's
        assert kv_heads[t_head // t_group] == s_head // group
    half = selected_indices(head_dim // 2, t_head_dim // 2)
    dims = torch.cat([half, half + head_dim // 2])  # the same dimensions in both rotary halves
    cols = selected_indices(heads * head_dim, t_heads * t_head_dim)  # hidden
    for layer in (0, 1):
        attention, source_attention = small.model.layers[layer].self_attn, model.model.layers[layer].self_attn
        q, k = head_rows(attention.q_proj.weight, t_heads), head_rows(attention.k_proj.weight, t_kv)
        v, o = head_rows(attention.v_proj.weight, t_kv), attention.o_proj.weight.reshape(-1, t_heads, t_head_dim)
        source_q = head_rows(source_attention.q_proj.weight, heads)
        source_k, source_v = head_rows(source_attention.k_proj.weight, kv), head_rows(source_attention.v_proj.weight, kv)
        source_o = source_attention.o_proj.weight.reshape(-1, heads, head_dim)
        for t_head, s_head in enumerate(q_heads):
            assert torch.equal(q[t_head], source_q[s_head][dims][:, cols])
            assert torch.equal(o[:, t_head], source_o[cols][:, s_head][:, dims])
        for t_head, s_head in enumerate(kv_heads):
            assert torch.equal(k[t_head], source_k[s_head][dims][:, cols])
            assert torch.equal(v[t_head], source_v[s_head][dims][:, cols])


def test_weight_selection_keeps_the_full_function_of_the_kept_heads():
    """Heads dropped, widths kept: every kept head computes exactly what it did in the source."""
    model = llama(heads=4, kv_heads=2, head_dim=8).eval()
    learngene = Learngene.extract(model, method="weight_selection", show_progress=False)
    small = learngene.build({"heads": 2, "hidden": 32, "head_dim": 8}, auto_class=transformers.LlamaForCausalLM,
                            show_progress=False)
    assert (small.config.num_key_value_heads, small.config.head_dim) == (1, 8)
    # the source with the dropped kv group's output columns zeroed computes the same attention
    reference = llama(heads=4, kv_heads=2, head_dim=8).eval()
    with torch.no_grad():
        for layer in reference.model.layers:
            layer.self_attn.o_proj.weight[:, 16:] = 0.0
    ids = torch.randint(1, 90, (2, 6))
    with torch.no_grad():
        expected = reference.model.layers[0].self_attn.o_proj.weight[:, :16]
        assert torch.equal(small.model.layers[0].self_attn.o_proj.weight, expected)
        assert torch.allclose(small(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-5)


def test_weight_selection_refuses_a_grouping_it_cannot_keep():
    learngene = Learngene.extract(llama(heads=4, kv_heads=4, head_dim=4), method="weight_selection",
                                  show_progress=False)
    with pytest.raises(LearngeneConfigError, match="at most the 1 query head\\(s\\) a source key/value head serves, "
                                                   "not 2; ask for more key/value heads \\(e.g. kv_heads=2\\)"):
        learngene.build({"hidden": 8, "heads": 2, "kv_heads": 1}, auto_class=transformers.LlamaForCausalLM)


def test_weight_selection_refuses_to_grow(bert):
    learngene = Learngene.extract(bert, method="weight_selection", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="weight_selection only shrinks: the layers axis would grow"):
        learngene.build({"layers": 6})


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_hypercloning_preserves_the_function(family):
    source = tiny_model(tiny_config(family, layers=2, heads=4, head_dim=4, intermediate=24, kv_heads=2))
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    grown = learngene.build({"hidden": 48, "heads": 12, "intermediate": 72}, auto_class=type(source),
                            show_progress=False)
    assert grown.config.num_attention_heads == 12 if family != "gpt2" else grown.config.n_head == 12
    ids = torch.randint(1, 90, (2, 6))
    before, after = hidden_states(source, ids), hidden_states(grown, ids)
    assert after.shape[-1] == 3 * before.shape[-1]
    assert torch.allclose(after, before.repeat(1, 1, 3), atol=1e-4)


@pytest.mark.parametrize("kv_heads", [2, 8])
def test_hypercloning_refuses_a_grouping_its_copies_would_not_keep(kv_heads):
    """4 heads, 2 per kv head → 8 heads: only kv_heads=4 keeps every copied query head on its kv head."""
    learngene = Learngene.extract(llama(heads=4, kv_heads=2, head_dim=4), method="hypercloning", show_progress=False)
    message = "only with the source's 2 query head\\(s\\) per key/value head, but the target has .*Leave kv_heads out"
    with pytest.raises(LearngeneConfigError, match=message + " of the size .*kv_heads=4"):
        learngene.build({"hidden": 32, "heads": 8, "kv_heads": kv_heads}, auto_class=transformers.LlamaForCausalLM)
    grown = learngene.build({"hidden": 32, "heads": 8}, auto_class=transformers.LlamaForCausalLM, show_progress=False)
    assert grown.config.num_key_value_heads == 4


def test_hypercloning_noise_breaks_symmetry_at_the_given_snr(bert):
    exact = Learngene.extract(bert, method="hypercloning", show_progress=False).build({"hidden": 32, "heads": 8})
    noisy = Learngene.extract(bert, method="hypercloning", snr_db=20, show_progress=False).build(
        {"hidden": 32, "heads": 8}
    )
    signal = exact.encoder.layer[0].intermediate.dense.weight
    noise = noisy.encoder.layer[0].intermediate.dense.weight - signal
    snr_db = 10 * torch.log10(signal.pow(2).mean() / noise.pow(2).mean()).item()
    assert 17 < snr_db < 23


@pytest.mark.parametrize(
    "size,message",
    [
        ({"hidden": 24, "heads": 6}, "whole factors only: hidden 16 → 24 is 1.5×"),
        ({"layers": 8}, "cannot change the layers axis"),
        ({"hidden": 8, "heads": 2}, "whole factors only"),
    ],
)
def test_hypercloning_says_what_it_cannot_do(bert, size, message):
    learngene = Learngene.extract(bert, method="hypercloning", show_progress=False)
    with pytest.raises(LearngeneConfigError, match=message):
        learngene.build(size)


@pytest.mark.parametrize("family", ["bert", "vit"])
@pytest.mark.parametrize("heads", [4, 8])
def test_hypercloning_grows_the_head_size_of_flat_heads_keeping_the_function(family, heads):
    """4 heads of 4 → 4 heads of 8 (queries and keys divided by 2^(1/4), the logits kept), or 8 heads of 4."""
    source = tiny_model(tiny_config(family, layers=2, heads=4, head_dim=4, intermediate=24))
    with torch.no_grad():  # sharp attention: at init's scale every softmax is nearly uniform whatever its logits
        for name, param in source.named_parameters():
            if name.endswith(("query.weight", "key.weight", "q_proj.weight", "k_proj.weight")):
                param.mul_(20)
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    grown = learngene.build({"hidden": 32, "heads": heads, "intermediate": 48}, auto_class=type(source),
                            show_progress=False)
    assert grown.config.num_attention_heads == heads
    if family == "bert":
        ids = torch.randint(1, 90, (2, 6))
        before, after = hidden_states(source, ids), hidden_states(grown, ids)
    else:
        pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            before = source.eval()(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
            after = grown.eval()(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(after, before.repeat(1, 1, 2), atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hypercloning_refuses_a_head_size_it_cannot_keep(family):
    """GPT-2's fused projection does not say which rows are queries and keys; Llama's rotation
    frequencies follow the head size."""
    source = tiny_model(tiny_config(family, layers=2, heads=4, head_dim=4, intermediate=24))
    learngene = Learngene.extract(source, method="hypercloning", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="cannot change the .*head_dim axis"):
        learngene.build({"hidden": 32, "heads": 4}, auto_class=type(source), show_progress=False)


@pytest.mark.parametrize("order,expected", [("interleave", [0, 0, 1, 1, 2, 2, 3, 3]), ("repeat", [0, 1, 2, 3, 0, 1, 2, 3])])
def test_stack_copies_blocks_in_order(bert, order, expected):
    learngene = Learngene.extract(bert, method="stack", order=order, show_progress=False)
    deep = learngene.build({"layers": 8}, auto_class=type(bert), show_progress=False)
    for target, source in enumerate(expected):
        assert torch.equal(deep.bert.encoder.layer[target].attention.self.key.weight,
                           bert.bert.encoder.layer[source].attention.self.key.weight)


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_stack_with_identity_copies_preserves_the_function(family):
    source = tiny_model(tiny_config(family, layers=3, heads=2, head_dim=4, intermediate=16))
    learngene = Learngene.extract(source, method="stack", identity_copies=True, show_progress=False)
    deep = learngene.build({"layers": 7}, auto_class=type(source), show_progress=False)
    ids = torch.randint(1, 90, (2, 5))
    assert torch.allclose(hidden_states(deep, ids), hidden_states(source, ids), atol=1e-5)


def test_stack_refuses_width_and_shrink(bert):
    learngene = Learngene.extract(bert, method="stack", show_progress=False)
    with pytest.raises(LearngeneConfigError, match="stack changes depth only"):
        learngene.build({"hidden": 32, "heads": 8})
    with pytest.raises(LearngeneConfigError, match="stack only grows depth"):
        learngene.build({"layers": 2})


def test_random_is_the_target_architectures_own_init(bert):
    learngene = Learngene.extract(bert, method="random", show_progress=False)
    assert learngene.config.roles == {}
    size = {"layers": 2, "hidden": 8, "heads": 2}
    torch.manual_seed(3)
    built = hf_learngene.AutoModelForMaskedLM.from_learngene(learngene, size, show_progress=False)
    torch.manual_seed(3)
    reference = transformers.AutoModelForMaskedLM.from_config(learngene.target_config(size))
    for name, tensor in reference.state_dict().items():
        assert tensor.shape == built.state_dict()[name].shape
    std = built.bert.encoder.layer[0].intermediate.dense.weight.std().item()
    assert 0.015 < std < 0.025  # BERT's initializer_range 0.02, not left empty


def test_weight_selection_from_an_old_learngene_keeps_the_sources_grouping():
    """Learngenes saved before grouped heads were stored split by key/value head are read with the
    source's grouping (8 heads, 8 kv heads here), not the target's: a 4-head, 2-kv-head target is
    refused as from a new learngene (each query head would read another head's key/value), and a
    4-head, 4-kv-head one is built exactly as from a new learngene."""
    import transformers

    from hf_learngene.learngene import _storage_key

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=8,
                                      num_key_value_heads=8, intermediate_size=48, max_position_embeddings=32)
    torch.manual_seed(0)
    source = transformers.LlamaForCausalLM(config).eval()
    learngene = Learngene.extract(source, method="weight_selection", show_progress=False)
    target = {"hidden": 16, "heads": 4, "kv_heads": 4, "intermediate": 24}
    expected = learngene.build(target, auto_class=transformers.LlamaForCausalLM, show_progress=False).state_dict()
    for role, info in learngene.config.roles.items():  # the old, unsplit layout
        key = _storage_key(role)
        flat = learngene.coefficients[key].detach().reshape(info["source_shape"])
        learngene.coefficients[key] = torch.nn.Parameter(flat)
        info["stored_shape"] = list(flat.shape)
    rebuilt = learngene.build(target, auto_class=transformers.LlamaForCausalLM, show_progress=False).state_dict()
    for name, tensor in expected.items():
        assert torch.equal(rebuilt[name], tensor), name
    with pytest.raises(LearngeneConfigError, match="can serve at most the 1 query head"):
        learngene.build({**target, "kv_heads": 2}, auto_class=transformers.LlamaForCausalLM, show_progress=False)
