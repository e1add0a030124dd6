"""DivMorph: the factorized limb-token controller, its gates, task transfer, single-agent deployment
and learngene files — on tiny sizes and synthetic limb tokens (no simulator needed)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hf_learngene.errors import LearngeneConfigError, LearngeneLoadError
from hf_learngene.modeling.divmorph import (
    DivMorphConfig,
    DivMorphForContinuousControl,
    DivMorphLinear,
    DivMorphSingleAgentPolicy,
)

TOKEN_DIM, MAX_LIMBS = 7, 6


def tiny_config(**overrides) -> DivMorphConfig:
    fields = dict(token_dim=TOKEN_DIM, max_limbs=MAX_LIMBS, num_bodies=3, num_tasks=2, hidden_size=16, num_layers=2,
                  num_heads=2, intermediate_size=32, morphology_embedding_dim=8, task_embedding_dim=8)
    fields.update(overrides)
    return DivMorphConfig(**fields)


def tiny_model(seed: int = 0, **overrides) -> DivMorphForContinuousControl:
    torch.manual_seed(seed)
    return DivMorphForContinuousControl(tiny_config(**overrides)).eval()


def batch(size: int = 4, limbs: int = MAX_LIMBS, real: tuple[int, ...] = (3, 6, 4, 2), seed: int = 1):
    """Synthetic observations: bodies with ``real[i]`` limbs padded to ``limbs`` slots."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(size, limbs, TOKEN_DIM, generator=generator)
    counts = torch.tensor([real[i % len(real)] for i in range(size)])
    mask = torch.arange(limbs)[None, :] < counts[:, None]
    body_ids = torch.arange(size) % 3
    task_ids = torch.arange(size) % 2
    return tokens, mask, body_ids, task_ids


def open_all_gates(model: DivMorphForContinuousControl) -> None:
    """Gate projections that output sigmoid(1e4) = 1 exactly, whatever the body or task."""
    with torch.no_grad():
        for projection in [*model.gate_network.morphology_projections.values(),
                           *model.gate_network.task_projections.values()]:
            projection.weight.zero_()
            projection.bias.fill_(1e4)


# ---------------------------------------------------------------------------------------------- factorization


def test_a_factorized_linear_equals_the_dense_random_linear_it_was_split_from():
    torch.manual_seed(0)
    dense = nn.Linear(12, 20)
    layer = DivMorphLinear(12, 20, {"learngene": 0.5, "morphology": 0.25, "task": 0.25})
    layer.reset_from_dense(dense.weight, dense.bias)
    assert layer.counts == {"learngene": 6, "morphology": 3, "task": 3}
    assert torch.allclose(layer.dense_weight(), dense.weight, atol=1e-6)
    x = torch.randn(3, 5, 12)
    assert torch.allclose(layer(x), dense(x), atol=1e-5)
    # one SVD: all 12 units orthonormal together, largest singular values in the learngene
    u = torch.cat([layer.learngene_factors.U, layer.morphology_factors.U, layer.task_factors.U], dim=1)
    v = torch.cat([layer.learngene_factors.V, layer.morphology_factors.V, layer.task_factors.V], dim=1)
    assert torch.allclose(u.T @ u, torch.eye(12), atol=1e-5) and torch.allclose(v.T @ v, torch.eye(12), atol=1e-5)
    sigma = torch.cat([layer.learngene.sigma, layer.morphology.sigma, layer.task.sigma])
    assert torch.all(sigma[:-1] >= sigma[1:])
    # closing a tailor unit removes exactly its rank-1 term
    gate = torch.ones(3)
    gate[0] = 0.0
    expected = dense.weight - layer.morphology.sigma[0] * torch.outer(layer.morphology_factors.U[:, 0],
                                                                      layer.morphology_factors.V[:, 0])
    assert torch.allclose(layer.dense_weight(morphology=gate), expected, atol=1e-6)


def test_a_new_controller_is_the_svd_of_a_dense_random_init_and_matches_the_dense_baseline():
    model = tiny_model()
    for name, layer in model.factorized_linears().items():
        u = torch.cat([f.U for f in (layer.learngene_factors, layer.morphology_factors, layer.task_factors)], dim=1)
        assert torch.allclose(u.T @ u, torch.eye(layer.rank), atol=1e-5), name
        bound = 1 / layer.in_features ** 0.5  # nn.Linear's uniform draw
        assert layer.dense_weight().abs().max() <= bound + 1e-5 and layer.bias.abs().max() <= bound, name

    # the same random weights, dense and factorized, give the same controller when every gate is open
    baseline = tiny_model(seed=3, factorized=False)
    with torch.no_grad():
        for name, layer in model.factorized_linears().items():
            dense = baseline.get_submodule(name)
            layer.reset_from_dense(dense.weight, dense.bias)
        baseline.task_embedding.weight.zero_()  # the baseline's only extra: how it reads the task
    dense_only = {k: v for k, v in baseline.state_dict().items()
                  if not any(k.startswith(f"{name}.") for name in model.factorized_linears())
                  and not k.startswith("task_embedding.")}
    missing, unexpected = model.load_state_dict(dense_only, strict=False)
    assert not unexpected and all(".layers." in k or "input_projection" in k or "gate_network" in k for k in missing)
    open_all_gates(model)
    inputs = batch()
    ours, theirs = model(*inputs), baseline(*inputs)
    assert torch.allclose(ours.action_mean, theirs.action_mean, atol=1e-5)
    assert torch.allclose(ours.value, theirs.value, atol=1e-5)
    assert torch.equal(ours.gates, torch.ones_like(ours.gates))


# ---------------------------------------------------------------------------------------------- gates and masks


def test_gates_make_the_outputs_depend_on_the_body_and_the_task():
    model = tiny_model()
    tokens, mask, _, _ = batch(size=1)
    tokens, mask = tokens.expand(3, -1, -1), mask.expand(3, -1)
    by_body = model(tokens, mask, torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]))
    by_task = model(tokens[:2], mask[:2], torch.tensor([0, 0]), torch.tensor([0, 1]))
    for out in (by_body, by_task):
        assert out.gates.shape == (len(out.value), sum(stop - start for *_, start, stop in model.gate_slices()))
        assert (out.gates[0] - out.gates[1]).abs().max() > 1e-3
        assert (out.action_mean[0] - out.action_mean[1]).abs().max() > 1e-4
        assert (out.value[0] - out.value[1]).abs() > 1e-6
    assert (by_body.action_mean[1] - by_body.action_mean[2]).abs().max() > 1e-4
    # the same body and task in one batch give the same output: the gates are per sample
    again = model(tokens, mask, torch.tensor([1, 0, 1]), torch.tensor([0, 0, 0]))
    assert torch.allclose(again.action_mean[0], again.action_mean[2]) and torch.allclose(again.action_mean[0],
                                                                                          by_body.action_mean[1])
    assert torch.isclose(by_body.sparsity_loss, model.config.sparsity_weight * by_body.gates.mean())
    # slices cover every tailor unit of every linear once, morphology first
    slices = model.gate_slices()
    assert [s[2] for s in slices] == [0] + [s[3] for s in slices[:-1]]
    assert {kind for _, kind, *_ in slices[: len(slices) // 2]} == {"morphology"}


def test_padded_limbs_change_nothing_for_the_real_limbs():
    model = tiny_model()
    tokens, mask, body_ids, task_ids = batch(limbs=4, real=(2, 3, 4, 1))
    reference = model(tokens, mask, body_ids, task_ids)
    junk = tokens.clone()
    junk[~mask] = 1e3 * torch.randn(int((~mask).sum()), TOKEN_DIM)
    padded = torch.cat([junk, torch.randn(4, 2, TOKEN_DIM)], dim=1)  # two more empty slots
    wider = model(padded, torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1), body_ids, task_ids)
    assert torch.allclose(wider.action_mean[:, :4], reference.action_mean, atol=1e-5)
    assert torch.allclose(wider.value, reference.value, atol=1e-5)
    assert torch.all(wider.action_mean[:, 4:] == 0) and torch.all(reference.action_mean[~mask] == 0)
    assert torch.equal(wider.action_log_std[:, :4], reference.action_log_std)
    # unactuated limbs get no action but still shape the others
    action_mask = mask.clone()
    action_mask[:, 0] = False
    out = model(tokens, mask.float(), body_ids, task_ids, action_mask=action_mask)
    assert torch.all(out.action_mean[:, 0] == 0)
    assert torch.allclose(out.action_mean[:, 1:], reference.action_mean[:, 1:], atol=1e-6)


def test_bad_inputs_are_refused_with_a_clear_error():
    model = tiny_model()
    tokens, mask, body_ids, task_ids = batch()
    with pytest.raises(ValueError, match=rf"tokens must be a tensor \(batch, limbs, {TOKEN_DIM}\)"):
        model(tokens[0], mask, body_ids, task_ids)
    with pytest.raises(ValueError, match="at most max_limbs=6"):
        model(torch.randn(4, 7, TOKEN_DIM), torch.ones(4, 7), body_ids, task_ids)
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, limbs\)"):
        model(tokens, mask[:, :3], body_ids, task_ids)
    empty = mask.clone()
    empty[2] = False
    with pytest.raises(ValueError, match=r"at least one real limb.*\[2\]"):
        model(tokens, empty, body_ids, task_ids)
    with pytest.raises(ValueError, match=r"body_ids must be in \[0, 3\); got 3 at sample 1.*add_body"):
        model(tokens, mask, torch.tensor([0, 3, 0, 0]), task_ids)
    with pytest.raises(ValueError, match="task_ids must hold integer indices"):
        model(tokens, mask, body_ids, task_ids.float())


# ---------------------------------------------------------------------------------------------- transfer


def test_task_transfer_trains_only_the_task_tailors():
    model = tiny_model()
    kinds = {name: model.parameter_kind(name) for name, _ in model.named_parameters()}
    ids = {id(p) for group in (model.learngene_parameters(), model.morphology_tailor_parameters(),
                               model.task_tailor_parameters()) for p in group}
    assert len(ids) == len(list(model.parameters()))  # the three kinds partition the parameters
    assert kinds["gate_network.task_embedding.weight"] == "task"
    assert kinds["encoder.layers.0.mlp.fc1.task.sigma"] == "task"
    assert kinds["encoder.layers.0.mlp.fc1.morphology_factors.U"] == "morphology"
    assert kinds["encoder.layers.0.mlp.fc1.learngene_factors.V"] == "learngene"
    assert kinds["encoder.layers.0.mlp.fc1.bias"] == "learngene"

    new_task = model.add_task()
    assert new_task == 2 and model.config.num_tasks == 3
    trainable = model.freeze_for_task_transfer()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    tokens, mask, body_ids, _ = batch()
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    out = model(tokens, mask, body_ids, torch.full((4,), new_task))
    (out.action_mean.pow(2).mean() + out.value.pow(2).mean() + out.sparsity_loss).backward()
    named = dict(model.named_parameters())
    for name, param in named.items():
        trained = (kinds[name] == "task" and not name.endswith(("_factors.U", "_factors.V"))) or name in (
            "value_head.weight", "value_head.bias", "log_std")
        if trained and name != "log_std":  # log_std gets no gradient from this loss
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        if not trained:
            assert param.grad is None and not param.requires_grad, name
    assert named["gate_network.task_embedding.weight"].grad[new_task].abs().sum() > 0
    optimizer.step()
    for name, param in model.named_parameters():
        if kinds[name] != "task" and not name.startswith(("value_head", "log_std")):
            assert torch.equal(param, before[name]), name
    assert not torch.equal(named["encoder.layers.1.attention.q_proj.task.sigma"],
                           before["encoder.layers.1.attention.q_proj.task.sigma"])

    with pytest.raises(ValueError, match=r"add_task\(\) on a frozen controller"):
        model.add_task()  # the trainable list above would miss the new table
    assert model.config.num_tasks == 3
    model.freeze_for_task_transfer(train_task_factors=True)
    assert named["encoder.layers.0.mlp.fc1.task_factors.U"].requires_grad
    model.unfreeze()
    assert all(p.requires_grad for p in model.parameters())


def test_new_bodies_and_tasks_keep_the_existing_rows():
    from hf_learngene.morphology.tokens import TOKEN_DIM as SUITE_TOKEN_DIM

    assert DivMorphConfig().token_dim == SUITE_TOKEN_DIM  # the default fits the suite's limb tokens
    model = tiny_model()
    body_table = model.gate_network.body_embedding.weight.detach().clone()
    new_body = model.add_body(init="random")
    assert new_body == 3 and model.config.num_bodies == 4
    grown = model.gate_network.body_embedding.weight
    assert torch.equal(grown[:3], body_table) and not torch.allclose(grown[3], body_table.mean(0))
    new_task = model.add_task()
    assert torch.allclose(model.gate_network.task_embedding.weight[new_task],
                          model.gate_network.task_embedding.weight[:new_task].mean(0))
    tokens, mask, _, _ = batch(size=2)
    assert model(tokens, mask, torch.tensor([new_body, 0]), torch.tensor([new_task, 0])).action_mean.shape == (2, 6)
    with pytest.raises(ValueError, match="init must be 'mean'"):
        model.add_task(init="zeros")


# ---------------------------------------------------------------------------------------------- single agent


def test_the_single_agent_policy_reproduces_the_full_controller():
    model = tiny_model()
    tokens, mask, _, _ = batch()
    for body_id, task_id in ((0, 0), (2, 1)):
        policy = model.single_agent(body_id, task_id, threshold=0.0)
        assert isinstance(policy, DivMorphSingleAgentPolicy)
        assert not any("gate" in name or "embedding.weight" in name for name, _ in policy.named_parameters())
        full = model(tokens, mask, torch.full((4,), body_id), torch.full((4,), task_id))
        mine = policy(tokens, mask)
        assert torch.allclose(mine.action_mean, full.action_mean, atol=1e-5)
        assert torch.allclose(mine.value, full.value, atol=1e-5)
        assert torch.equal(mine.action_log_std, full.action_log_std)
        summary = policy.deployment_summary()
        assert summary["parameters"] == policy.num_parameters() < model.num_parameters() == summary["source_parameters"]
        assert summary["max_relative_weight_change"] < 1e-6


def push_tailor_gates_to_sparsity(model: DivMorphForContinuousControl, body: int = 1, task: int = 0,
                                  mean_gate: float = 0.1) -> None:
    """Train the gate network on the sparsity loss alone, in small steps, until the tailor gates of
    (``body``, ``task``) average below ``mean_gate``: most have fallen towards 0, the highest still stand."""
    model.train()
    optimizer = torch.optim.Adam(model.gate_network.parameters(), lr=0.02)
    tokens, mask, body_ids, task_ids = batch()
    for _ in range(500):
        if model.gate_values([body], [task]).mean() < mean_gate:
            break
        optimizer.zero_grad()
        model(tokens, mask, body_ids, task_ids).sparsity_loss.backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("gate", ["sigmoid", "straight_through"])
def test_a_thresholded_single_agent_is_smaller_once_the_tailor_gates_are_sparse(gate):
    model = tiny_model(gate=gate, unit_split={"learngene": 0.25, "morphology": 0.5, "task": 0.25},
                       sparsity_weight=1.0)
    tokens, mask, _, _ = batch()
    everything = model.single_agent(1, 0, threshold=0.0)
    push_tailor_gates_to_sparsity(model)
    gates = model.gate_values([1], [0])
    assert gates.mean() < 0.1 and gates.max() > 0.5  # mostly closed, a few still open
    full = model(tokens, mask, torch.full((4,), 1), torch.full((4,), 0))
    small = model.single_agent(1, 0)  # config.gate_threshold = 0.5
    exact = model.single_agent(1, 0, threshold=0.0)
    assert small.num_parameters() < everything.num_parameters()
    assert small.deployment_summary()["compression"] > 1.5 * everything.deployment_summary()["compression"]
    assert all(rank is not None for rank in small.config.linear_ranks.values())  # low-rank: smaller than dense
    assert torch.allclose(exact(tokens, mask).action_mean, full.action_mean, atol=1e-5)
    difference = (small(tokens, mask).action_mean - full.action_mean).abs().max()
    change = small.config.max_relative_weight_change
    if gate == "straight_through":  # closed gates are exactly 0: nothing is lost
        assert change < 1e-12 and difference < 1e-5
    else:  # soft gates below the threshold still contributed a little: a small, recorded approximation
        assert 1e-4 < change < 0.1
        assert 1e-5 < difference < 0.05


def test_top_k_gates_open_a_fixed_budget_that_deploys_exactly():
    model = tiny_model(gate="top_k", gate_density=0.25, unit_split={"learngene": 0.0, "morphology": 0.5, "task": 0.5})
    gates = model.gate_values([0, 1, 2], [0, 1, 0])
    for name, kind, start, stop in model.gate_slices():
        opened = gates[:, start:stop].detach()
        assert set(opened.unique().tolist()) <= {0.0, 1.0}
        assert (opened.sum(-1) == max(1, round(0.25 * (stop - start)))).all(), (name, kind)
    assert not torch.equal(gates[0], gates[1])  # each agent chooses its own units
    tokens, mask, _, _ = batch()
    model.train()
    out = model(tokens, mask, torch.full((4,), 1), torch.full((4,), 0))
    assert out.sparsity_loss == 0  # the budget is the sparsity: no pressure to add
    out.action_mean.pow(2).mean().backward()
    # units outside the budget still get a gradient through the sigmoid: they can win a place
    assert model.gate_network.morphology_projections["layer_0"].weight.grad.abs().sum() > 0
    model.eval()
    small, everything = model.single_agent(1, 0), model.single_agent(1, 0, threshold=0.0)
    assert small.config.max_relative_weight_change < 1e-12
    # closed gates are exactly 0, so even threshold 0 drops them: the deployed size is the budget's
    assert small.num_parameters() == everything.num_parameters() < model.num_parameters() / 3
    reference = model(tokens, mask, torch.full((4,), 1), torch.full((4,), 0)).action_mean
    assert torch.allclose(small(tokens, mask).action_mean, reference, atol=1e-5)


def test_single_agent_arguments_are_checked():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"threshold compares gate values and must be in \[0, 1\]"):
        model.single_agent(0, 0, threshold=2.0)
    with pytest.raises(ValueError, match=r"body_ids must be in \[0, 3\)"):
        model.single_agent(5, 0)
    with pytest.raises(ValueError, match="no units to select"):
        tiny_model(factorized=False).single_agent(0, 0)


@pytest.mark.parametrize("unit_split", [{"learngene": 1.0, "morphology": 0.0, "task": 0.0},
                                        {"learngene": 0.0, "morphology": 0.5, "task": 0.5},
                                        {"learngene": 0.5, "morphology": 0.5, "task": 0.0}])
def test_any_unit_split_runs_deploys_and_saves(unit_split, tmp_path):
    model = tiny_model(unit_split=unit_split)
    tokens, mask, body_ids, task_ids = batch()
    out = model(tokens, mask, body_ids, task_ids)
    tailors = sum(linear.counts["morphology"] + linear.counts["task"] for linear in model.factorized_linears().values())
    assert out.gates.shape == (4, tailors)
    policy = model.single_agent(0, 1, threshold=0.0)
    full = model(tokens, mask, torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long))
    assert torch.allclose(policy(tokens, mask).action_mean, full.action_mean, atol=1e-5)
    built = DivMorphForContinuousControl.from_learngene(model.save_learngene(tmp_path / "lg"), num_bodies=1,
                                                        num_tasks=1)
    assert torch.isfinite(built(tokens, mask, torch.zeros(4, dtype=torch.long), 0).action_mean).all()


# ---------------------------------------------------------------------------------------------- saving


def test_save_pretrained_round_trips_the_controller_and_the_single_agent(tmp_path):
    model = tiny_model(gate="straight_through")
    inputs = batch()
    model.save_pretrained(tmp_path / "controller")
    loaded = DivMorphForContinuousControl.from_pretrained(tmp_path / "controller").eval()
    assert loaded.config.gate == "straight_through" and loaded.config.unit_split == model.config.unit_split
    for ours, theirs in zip(model(*inputs).to_tuple(), loaded(*inputs).to_tuple()):
        assert torch.equal(ours, theirs)
    assert (tmp_path / "controller" / "model.safetensors").is_file()

    policy = model.single_agent(2, 1, threshold=0.0)
    policy.save_pretrained(tmp_path / "agent")
    again = DivMorphSingleAgentPolicy.from_pretrained(tmp_path / "agent").eval()
    assert again.config.linear_ranks == policy.config.linear_ranks
    assert torch.equal(again(*inputs[:2]).action_mean, policy(*inputs[:2]).action_mean)

    baseline = tiny_model(factorized=False)
    baseline.save_pretrained(tmp_path / "baseline")
    reloaded = DivMorphForContinuousControl.from_pretrained(tmp_path / "baseline").eval()
    assert torch.equal(reloaded(*inputs).action_mean, baseline(*inputs).action_mean)


def test_a_learngene_builds_a_controller_for_another_body_set(tmp_path):
    model = tiny_model()
    folder = model.save_learngene(tmp_path / "lg")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "learngene.safetensors", "learngene_config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["lg"]  # no staging folder left behind
    info = json.loads((folder / "learngene_config.json").read_text())
    assert info["learngene_type"] == "divmorph" and info["source_num_bodies"] == 3
    assert f'from_learngene("{folder}"' in (folder / "README.md").read_text()
    saved = model.learngene_state_dict()
    assert not any("morphology" in k or "task" in k or "gate_network" in k or k.startswith(("value_head", "log_std"))
                   for k in saved)
    assert "encoder.layers.1.attention.v_proj.learngene_factors.U" in saved and "actor_head.weight" in saved

    built = DivMorphForContinuousControl.from_learngene(folder, num_bodies=5, num_tasks=1, gate="straight_through",
                                                        morphology_embedding_dim=4)
    assert built.config.num_bodies == 5 and built.gate_network.body_embedding.weight.shape == (5, 4)
    for name, tensor in built.learngene_state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    for name, layer in built.factorized_linears().items():  # fresh tailors, orthogonal to the learngene
        original = model.get_submodule(name)
        assert not torch.allclose(layer.morphology_factors.U, original.morphology_factors.U)
        u = torch.cat([layer.learngene_factors.U, layer.morphology_factors.U, layer.task_factors.U], dim=1)
        v = torch.cat([layer.learngene_factors.V, layer.morphology_factors.V, layer.task_factors.V], dim=1)
        assert torch.allclose(u.T @ u, torch.eye(layer.rank), atol=1e-4), name
        assert torch.allclose(v.T @ v, torch.eye(layer.rank), atol=1e-4), name
    tokens, mask, _, _ = batch()
    out = built(tokens, mask, torch.tensor([4, 3, 2, 1]), torch.zeros(4, dtype=torch.long))
    assert torch.isfinite(out.action_mean).all() and set(out.gates.unique().tolist()) <= {0.0, 1.0}


def test_a_mismatched_or_broken_learngene_is_refused(tmp_path):
    folder = tiny_model().save_learngene(tmp_path / "lg")
    with pytest.raises(LearngeneConfigError, match="has hidden_size=16, the request asks for 32"):
        DivMorphForContinuousControl.from_learngene(folder, num_bodies=2, num_tasks=1, hidden_size=32)
    with pytest.raises(LearngeneConfigError, match="has token_dim=7"):
        DivMorphForContinuousControl.from_learngene(folder, num_bodies=2, num_tasks=1, token_dim=9)
    with pytest.raises(LearngeneConfigError, match="unknown DivMorphConfig field 'hidden'"):
        DivMorphForContinuousControl.from_learngene(folder, num_bodies=2, num_tasks=1, hidden=32)
    with pytest.raises(LearngeneLoadError, match="neither a local folder"):
        DivMorphForContinuousControl.from_learngene(tmp_path / "nowhere", num_bodies=2, num_tasks=1)
    with pytest.raises(ValueError, match="no learngene"):
        tiny_model(factorized=False).save_learngene(tmp_path / "dense")
    assert not (tmp_path / "dense").exists()

    # the file's tensors come from a wider model than its config says
    info = json.loads((folder / "learngene_config.json").read_text())
    other = tiny_model(hidden_size=32, intermediate_size=32).save_learngene(tmp_path / "wide")
    (other / "learngene_config.json").write_text(json.dumps(info))
    with pytest.raises(LearngeneLoadError, match="does not fit its own config.*wrong shapes"):
        DivMorphForContinuousControl.from_learngene(other, num_bodies=2, num_tasks=1)
    (folder / "learngene_config.json").write_text(json.dumps({**info, "learngene_type": "front"}))
    with pytest.raises(LearngeneLoadError, match="does not describe a DivMorph learngene"):
        DivMorphForContinuousControl.from_learngene(folder, num_bodies=2, num_tasks=1)


def test_a_learngene_pushes_with_a_card_and_builds_from_the_hub(hub):
    from huggingface_hub import ModelCard

    model = tiny_model()
    model.push_learngene_to_hub("tester/tiny-divmorph", tags=["unimal"])
    card = ModelCard.load("tester/tiny-divmorph")
    assert card.data.library_name == "hf-learngene"
    assert {"learngene", "learngene-divmorph", "reinforcement-learning", "unimal"} <= set(card.data.tags)
    assert card.data.learngene["source_num_bodies"] == 3
    assert 'from_learngene("tester/tiny-divmorph"' in card.text
    built = DivMorphForContinuousControl.from_learngene("tester/tiny-divmorph", num_bodies=2, num_tasks=2)
    for name, tensor in built.learngene_state_dict().items():
        assert torch.equal(tensor, model.learngene_state_dict()[name]), name


# ---------------------------------------------------------------------------------------------- config and baseline


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 10, "num_heads": 3}, r"num_heads \(3\) must divide hidden_size \(10\)"),
    ({"token_dim": 0}, "token_dim must be a positive integer, got 0"),
    ({"num_bodies": 2.0}, "num_bodies must be a positive integer"),
    ({"unit_split": {"learngene": 0.5, "morphology": 0.5}}, "unit_split needs exactly the keys"),
    ({"unit_split": {"learngene": 0.5, "morphology": 0.3, "task": 0.3}}, "must add up to 1"),
    ({"unit_split": {"learngene": 1.5, "morphology": -0.25, "task": -0.25}}, r"must be a fraction in \[0, 1\]"),
    ({"gate": "hard"}, r"gate must be one of \['sigmoid', 'straight_through', 'top_k'\], got 'hard'"),
    ({"gate_density": 0.0}, r"gate_density must be in \(0, 1\]"),
    ({"gate_threshold": 1.5}, r"gate_threshold must be in \[0, 1\]"),
    ({"sparsity_weight": -1.0}, "sparsity_weight must be >= 0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"factorized": "yes"}, "factorized must be True"),
    ({"init_log_std": float("nan")}, "init_log_std must be a finite number"),
])
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_a_config_round_trips_through_json(tmp_path):
    config = tiny_config(unit_split={"learngene": 0.2, "morphology": 0.4, "task": 0.4}, gate="straight_through")
    config.save_pretrained(tmp_path)
    loaded = DivMorphConfig.from_pretrained(tmp_path)
    assert loaded.unit_split == config.unit_split and loaded.gate == "straight_through" and loaded.num_bodies == 3


def test_the_dense_baseline_runs_and_trains():
    model = tiny_model(factorized=False).train()
    assert not model.factorized_linears() and model.gate_network is None
    assert isinstance(model.encoder.layers[0].attention.q_proj, nn.Linear)
    tokens, mask, body_ids, task_ids = batch()
    out = model(tokens, mask, body_ids, task_ids)
    assert out.gates is None and out.sparsity_loss.item() == 0.0
    assert out.action_mean.shape == (4, MAX_LIMBS) and out.value.shape == (4,)
    (out.action_mean.pow(2).mean() + out.value.pow(2).mean()).backward()
    assert all(p.grad is not None for name, p in model.named_parameters() if name != "log_std")
    assert model.num_parameters() < tiny_model().num_parameters()
    # it has no gates, so it reads the task from its task embedding: the task changes what it does
    other_task = model(tokens, mask, body_ids, (task_ids + 1) % model.config.num_tasks)
    assert not torch.allclose(other_task.action_mean, out.action_mean)
    with pytest.raises(ValueError, match="no task tailors"):
        model.freeze_for_task_transfer()


def test_the_input_projection_is_a_dense_shared_layer_unless_asked_to_be_factorized():
    model = tiny_model()
    assert isinstance(model.encoder.input_projection, nn.Linear)
    assert "encoder.input_projection" not in model.factorized_linears()
    assert model.parameter_kind("encoder.input_projection.weight") == "learngene"
    assert "encoder.input_projection.weight" in model.learngene_state_dict()
    tokens, mask, _, _ = batch()
    agent = model.single_agent(1, 0)
    full = model(tokens, mask, torch.full((4,), 1), torch.full((4,), 0))
    torch.testing.assert_close(agent(tokens, mask).action_mean, full.action_mean, atol=1e-5, rtol=0)
    factorized = tiny_model(factorize_input_projection=True)
    assert "encoder.input_projection" in factorized.factorized_linears()
    assert factorized.gate_values([0], [0]).shape[-1] > model.gate_values([0], [0]).shape[-1]


@pytest.mark.parametrize("factorized", [True, False])
def test_unseen_bodies_and_tasks_start_at_the_mean_of_the_trained_rows(factorized):
    model = tiny_model(factorized=factorized)
    model.init_unseen("task", [1], [0])
    if factorized:
        model.init_unseen("body", [2], [0, 1])
        bodies = model.gate_network.body_embedding.weight
        torch.testing.assert_close(bodies[2], bodies[:2].mean(0))
        tasks = model.gate_network.task_embedding.weight
    else:  # the baseline's task embedding; it has no body embedding, so bodies are left as they are
        model.init_unseen("body", [2], [0, 1])
        tasks = model.task_embedding.weight
    torch.testing.assert_close(tasks[1], tasks[0])
    with pytest.raises(ValueError, match="apart"):
        model.init_unseen("task", [0], [0])
    with pytest.raises(ValueError, match="'body' or 'task'"):
        model.init_unseen("limb", [1], [0])


def test_a_controller_saved_before_the_input_projection_option_loads_as_it_was_saved(tmp_path):
    """Its config.json has no factorize_input_projection: its input projection was factor units."""
    model = tiny_model(factorize_input_projection=True)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["factorize_input_projection"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = DivMorphForContinuousControl.from_pretrained(tmp_path).eval()
    assert loaded.config.factorize_input_projection
    tokens, mask, body_ids, task_ids = batch()
    torch.testing.assert_close(loaded(tokens, mask, body_ids, task_ids).action_mean,
                               model(tokens, mask, body_ids, task_ids).action_mean)
    assert not DivMorphConfig().factorize_input_projection  # a new controller's default
