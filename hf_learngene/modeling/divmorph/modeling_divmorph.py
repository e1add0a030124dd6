"""DivMorph: one limb-token Transformer controller for many robot bodies, with knowledge diversion.

Every observation is a set of limb tokens (``[max_limbs, token_dim]``, padded and masked); a
pre-LN Transformer encoder mixes them and two heads read each limb: the actor gives one action
mean per limb, the critic one value per limb, averaged over the real limbs.

When ``config.factorized`` (DivMorph), every linear of the encoder — the input projection, q, k,
v, o and both MLP matrices — is a :class:`DivMorphLinear`: before training, the SVD of the
layer's own random initialisation splits it into rank-1 units ``σ_i u_i v_iᵀ``. The units with
the largest singular values are the *learngene* (always on); the next ones are *morphology
tailors*, scaled by gates computed from the body's embedding; the last ones are *task tailors*,
scaled by gates from the task's embedding. Each kind is one ``FactorizedLinear`` over its own
``SharedFactors``, so the three kinds are separate parameters (they can be frozen, saved and
deployed apart) and together compute exactly the dense layer at initialisation. The heads stay
dense: an ``out=1`` matrix has a single rank-1 unit, nothing to divide.

With ``factorized=False`` the same Transformer has plain ``nn.Linear`` layers and no gates: the
MetaMorph-style baseline.

``single_agent(body, task)`` folds the gates of one agent into the weights and drops the tailor
units it does not use, giving a :class:`DivMorphSingleAgentPolicy` with no gates or embeddings.
``save_learngene`` / ``from_learngene`` carry the shared units to a controller for another body set.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...errors import LearngeneConfigError, LearngeneLoadError
from ...saving import push_folder, write_folder_atomically
from ..factorized import FactorizedLinear, SharedFactors
from .configuration_divmorph import UNIT_KINDS, DivMorphConfig, DivMorphSingleAgentConfig, unit_counts

LEARNGENE_WEIGHTS_NAME = "learngene.safetensors"
LEARNGENE_CONFIG_NAME = "learngene_config.json"
LEARNGENE_FORMAT_VERSION = 1
# Fields a learngene fixes: a controller built from it must have the same ones.
LEARNGENE_SIZE_FIELDS = ("token_dim", "max_limbs", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                         "unit_split", "factorized", "factorize_input_projection")
# Shared but not part of the saved learngene: the critic's scale follows the source's rewards and the
# exploration noise its training stage, so a new controller starts both fresh.
_NOT_IN_SAVED_LEARNGENE = ("value_head.", "log_std")
_CONFIG_FIELDS = tuple(name for name in inspect.signature(DivMorphConfig.__init__).parameters
                       if name not in ("self", "kwargs"))


# ---------------------------------------------------------------------------------------------- layers


def _random_dense(out_features: int, in_features: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight and bias drawn as ``nn.Linear`` draws them (uniform in ±1/√in)."""
    bound = 1.0 / math.sqrt(in_features)
    weight = torch.empty(out_features, in_features, dtype=torch.float32, device=like.device).uniform_(-bound, bound)
    bias = torch.empty(out_features, dtype=torch.float32, device=like.device).uniform_(-bound, bound)
    return weight, bias


class DivMorphLinear(nn.Module):
    """A linear layer stored as rank-1 units ``Σ_i σ_i g_i u_i v_iᵀ`` plus a bias, in three kinds.

    ``learngene`` units have gate 1; ``morphology`` and ``task`` units are scaled by the gates set
    with :meth:`set_unit_gates` (one value per unit, per sample). Each kind is a
    :class:`FactorizedLinear` whose :class:`SharedFactors` (``U``: out × n, ``V``: in × n) are
    registered here; a kind with no units is ``None``.
    """

    def __init__(self, in_features: int, out_features: int, unit_split: dict[str, float]):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.rank = min(in_features, out_features)
        self.counts = unit_counts(self.rank, unit_split)
        self.bias = nn.Parameter(torch.zeros(out_features))
        for kind in UNIT_KINDS:
            count = self.counts[kind]
            factors = SharedFactors(out_features, in_features, count) if count else None
            # FactorizedLinear only references its factors; registering them here puts them in the state dict once
            setattr(self, f"{kind}_factors", factors)
            setattr(self, kind, FactorizedLinear(factors, bias=False) if count else None)

    def groups(self) -> Iterator[tuple[str, FactorizedLinear]]:
        for kind in UNIT_KINDS:
            layer = getattr(self, kind)
            if layer is not None:
                yield kind, layer

    def set_unit_gates(self, morphology: torch.Tensor | None, task: torch.Tensor | None) -> None:
        """Gate the tailor units: ``(units,)`` for all samples or ``(batch, units)`` per sample; ``None`` = all 1."""
        for kind, gate in (("morphology", morphology), ("task", task)):
            layer = getattr(self, kind)
            if layer is None:
                if gate is not None and gate.shape[-1] != 0:
                    raise ValueError(f"this layer has no {kind} units, got a gate of shape {tuple(gate.shape)}")
                continue
            if gate is not None and gate.dim() == 2:
                gate = gate.unsqueeze(-2)  # (batch, 1, units) broadcasts over the limb tokens
            layer.set_gate(gate)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # the kinds' units side by side: two products for the whole layer instead of two per kind
        # (the same sum Σ σ_i g_i u_i v_iᵀ x; small inner sizes per kind would waste the matmuls)
        layers = [layer for _, layer in self.groups()]
        scales = [layer.scales() for layer in layers]
        batch = torch.broadcast_shapes(*(scale.shape[:-1] for scale in scales))
        scale = torch.cat([scale.expand(*batch, scale.shape[-1]) for scale in scales], -1)
        inner = F.linear(hidden, torch.cat([layer.factors.V for layer in layers], 1).T.to(hidden.dtype))
        return F.linear(inner * scale.to(hidden.dtype), torch.cat([layer.u() for layer in layers], 1).to(hidden.dtype),
                        self.bias.to(hidden.dtype))

    def units(self, morphology: torch.Tensor | None = None, task: torch.Tensor | None = None
              ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per kind: ``(U, σ, V, gate)`` with 1-D gates (learngene gates are ones)."""
        table = {}
        for kind, layer in self.groups():
            gate = {"morphology": morphology, "task": task}.get(kind)
            gate = torch.ones_like(layer.sigma) if gate is None else gate.reshape(-1)
            table[kind] = (layer.factors.U, layer.sigma, layer.factors.V, gate)
        return table

    def dense_weight(self, morphology: torch.Tensor | None = None, task: torch.Tensor | None = None) -> torch.Tensor:
        """The (out × in) weight this layer applies for one set of 1-D gates (``None``: gates of 1)."""
        weight = torch.zeros(self.out_features, self.in_features, dtype=self.bias.dtype, device=self.bias.device)
        for u, sigma, v, gate in self.units(morphology, task).values():
            weight = weight + (u * (sigma * gate)) @ v.T
        return weight

    @torch.no_grad()
    def reset_from_dense(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Split ``weight`` into this layer's units by SVD: the largest singular values go to the
        learngene, the next to the morphology tailors, the smallest to the task tailors. With all
        gates at 1 the layer then computes ``weight`` (up to float rounding)."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"weight must be ({self.out_features}, {self.in_features}), got {tuple(weight.shape)}")
        u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
        self._write_units(("learngene", "morphology", "task"), u, s, vh.T)
        self.bias.copy_(torch.zeros_like(self.bias) if bias is None else bias.detach())

    @torch.no_grad()
    def reset_tailors_from_dense(self, weight: torch.Tensor) -> None:
        """Fresh tailor units from the SVD of ``weight`` with the learngene's column and row spaces
        projected out first, so that the new tailors are orthogonal to the (loaded) learngene units."""
        w = weight.detach().double()
        if self.learngene is not None:
            left = torch.linalg.qr(self.learngene_factors.U.detach().double()).Q
            right = torch.linalg.qr(self.learngene_factors.V.detach().double()).Q
            w = w - left @ (left.T @ w)
            w = w - (w @ right) @ right.T
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        self._write_units(("morphology", "task"), u, s, vh.T)

    def _write_units(self, kinds: tuple[str, ...], u: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> None:
        start = 0
        for kind in kinds:
            count, layer = self.counts[kind], getattr(self, kind)
            if layer is None:
                continue
            layer.factors.U.copy_(u[:, start : start + count])
            layer.factors.V.copy_(v[:, start : start + count])
            layer.sigma.copy_(s[start : start + count])
            start += count

    def is_loaded(self) -> bool:
        return any(getattr(p, "_is_hf_initialized", False) for p in self.parameters())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, units={self.counts}"


class DeployedLinear(nn.Module):
    """A single agent's linear: a dense matrix (``rank=None``) or two thin factors ``up @ down``."""

    def __init__(self, in_features: int, out_features: int, rank: int | None):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        if rank is None:
            self.weight = nn.Parameter(torch.empty(out_features, in_features))
        else:
            self.down = nn.Parameter(torch.empty(rank, in_features))
            self.up = nn.Parameter(torch.empty(out_features, rank))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.rank is None:
            return F.linear(hidden, self.weight, self.bias)
        return F.linear(F.linear(hidden, self.down), self.up, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


class DivMorphGateProjection(nn.Linear):
    """Embedding → one gate logit per tailor unit of a block (a type of its own for its bias init)."""


class _HardGate(torch.autograd.Function):
    """Forward: 1 where the soft gate reaches the threshold, else 0. Backward: the identity."""

    @staticmethod
    def forward(ctx, probabilities: torch.Tensor, threshold: float) -> torch.Tensor:
        return (probabilities >= threshold).to(probabilities.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


LinearFactory = Callable[[str, int, int], nn.Module]


class DivMorphAttention(nn.Module):
    def __init__(self, config, make_linear: LinearFactory, prefix: str):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads, self.head_dim, self.dropout = config.num_heads, hidden // config.num_heads, config.dropout
        self.q_proj = make_linear(f"{prefix}.q_proj", hidden, hidden)
        self.k_proj = make_linear(f"{prefix}.k_proj", hidden, hidden)
        self.v_proj = make_linear(f"{prefix}.v_proj", hidden, hidden)
        self.o_proj = make_linear(f"{prefix}.o_proj", hidden, hidden)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, limbs, _ = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, limbs, self.num_heads, self.head_dim).transpose(1, 2)

        # padded limbs are never keys, so they cannot change what a real limb sees
        attended = F.scaled_dot_product_attention(
            split(self.q_proj(hidden)), split(self.k_proj(hidden)), split(self.v_proj(hidden)),
            attn_mask=mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(attended.transpose(1, 2).reshape(batch, limbs, -1))


class DivMorphMLP(nn.Module):
    def __init__(self, config, make_linear: LinearFactory, prefix: str):
        super().__init__()
        self.fc1 = make_linear(f"{prefix}.fc1", config.hidden_size, config.intermediate_size)
        self.fc2 = make_linear(f"{prefix}.fc2", config.intermediate_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(hidden)))


class DivMorphEncoderLayer(nn.Module):
    """A pre-LN Transformer block over the limb tokens."""

    def __init__(self, config, make_linear: LinearFactory, prefix: str):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = DivMorphAttention(config, make_linear, f"{prefix}.attention")
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = DivMorphMLP(config, make_linear, f"{prefix}.mlp")
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.dropout(self.attention(self.attention_norm(hidden), mask))
        return hidden + self.dropout(self.mlp(self.mlp_norm(hidden)))


class DivMorphEncoder(nn.Module):
    """Limb tokens → input projection + a learned embedding of the limb slot → pre-LN blocks → LayerNorm."""

    def __init__(self, config, make_linear: LinearFactory):
        super().__init__()
        self.input_projection = make_linear("encoder.input_projection", config.token_dim, config.hidden_size)
        self.limb_position_embedding = nn.Parameter(torch.zeros(config.max_limbs, config.hidden_size))
        self.layers = nn.ModuleList(DivMorphEncoderLayer(config, make_linear, f"encoder.layers.{index}")
                                    for index in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``condition`` (batch, hidden), when given, is added to every limb's input (the baseline's task)."""
        hidden = self.input_projection(tokens) + self.limb_position_embedding[: tokens.shape[1]].to(tokens.dtype)
        if condition is not None:
            hidden = hidden + condition[:, None].to(hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return self.final_norm(hidden)


class DivMorphGateNetwork(nn.Module):
    """Body and task embeddings, and per block one projection from each embedding to one gate per unit.

    ``layout`` lists the blocks (``"input"``, ``"layer_0"``, ...) with their linears' unit counts;
    the gate vector holds all morphology gates, then all task gates, in that order.
    """

    def __init__(self, config: DivMorphConfig, layout: list[tuple[str, list[tuple[str, dict[str, int]]]]]):
        super().__init__()
        self.gate, self.threshold, self.density = config.gate, config.gate_threshold, config.gate_density
        self.layout = layout
        self.body_embedding = nn.Embedding(config.num_bodies, config.morphology_embedding_dim)
        self.task_embedding = nn.Embedding(config.num_tasks, config.task_embedding_dim)
        self.morphology_projections = nn.ModuleDict()
        self.task_projections = nn.ModuleDict()
        for block, linears in layout:
            for kind, projections, width in (("morphology", self.morphology_projections,
                                              config.morphology_embedding_dim),
                                             ("task", self.task_projections, config.task_embedding_dim)):
                units = sum(counts[kind] for _, counts in linears)
                if units:
                    projections[block] = DivMorphGateProjection(width, units)

    def slices(self) -> list[tuple[str, str, int, int]]:
        """``(linear name, kind, start, stop)`` of every linear's gates in the gate vector."""
        table, start = [], 0
        for kind in ("morphology", "task"):
            for _, linears in self.layout:
                for name, counts in linears:
                    if counts[kind]:
                        table.append((name, kind, start, start + counts[kind]))
                        start += counts[kind]
        return table

    def forward(self, body_ids: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Gate values ``(batch, tailor units)``."""
        logits = []
        for projections, embedding in ((self.morphology_projections, self.body_embedding(body_ids)),
                                       (self.task_projections, self.task_embedding(task_ids))):
            logits.extend(projections[block](embedding) for block, _ in self.layout if block in projections)
        if not logits:
            return self.body_embedding.weight.new_zeros(body_ids.shape[0], 0)
        logits = torch.cat(logits, dim=-1)
        probabilities = torch.sigmoid(logits)
        if self.gate == "straight_through":
            return _HardGate.apply(probabilities, self.threshold)
        if self.gate == "top_k":
            return probabilities + (self._top_k_mask(logits) - probabilities).detach()
        return probabilities

    def _top_k_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """1 on each linear's ``density`` share (at least one) of morphology and of task units with
        the largest logits, 0 elsewhere."""
        mask = torch.zeros_like(logits)
        for _, _, start, stop in self.slices():
            k = max(1, round(self.density * (stop - start)))
            chosen = logits[..., start:stop].topk(k, dim=-1).indices + start
            mask.scatter_(-1, chosen, 1.0)
        return mask


# ---------------------------------------------------------------------------------------------- outputs


@dataclass
class DivMorphOutput(ModelOutput):
    """Outputs of :class:`DivMorphForContinuousControl` (and of the single-agent policy, without gates).

    Args:
        action_mean: ``(batch, limbs)`` mean of each limb's action; 0 for padded and unactuated limbs.
        action_log_std: ``(batch, limbs)`` the learned, state-independent log std, broadcast.
        value: ``(batch,)`` the critic's value: its per-limb outputs averaged over the real limbs.
        gates: ``(batch, tailor units)`` the gate of every morphology unit, then of every task unit
            (``None`` for the dense baseline and the single agent); see ``gate_slices()``.
        sparsity_loss: ``sparsity_weight`` × the mean tailor gate — add it to the training loss.
    """

    action_mean: torch.FloatTensor | None = None
    action_log_std: torch.FloatTensor | None = None
    value: torch.FloatTensor | None = None
    gates: torch.FloatTensor | None = None
    sparsity_loss: torch.FloatTensor | None = None


def _check_inputs(config, tokens: torch.Tensor, mask: torch.Tensor, action_mask: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated boolean ``(mask, keep)``: keep = real and actuated limbs."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[-1] != config.token_dim:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a tensor (batch, limbs, {config.token_dim}), got {shape}; "
                         "add a batch dimension for a single observation")
    if not tokens.is_floating_point():
        raise ValueError(f"tokens must be floating point, got {tokens.dtype}")
    batch, limbs = tokens.shape[:2]
    if limbs > config.max_limbs:
        raise ValueError(f"tokens hold {limbs} limbs, the model was built for at most max_limbs={config.max_limbs}")
    masks = {}
    for name, value in (("mask", mask), ("action_mask", action_mask)):
        if value is None:
            continue
        value = torch.as_tensor(value, device=tokens.device)
        if tuple(value.shape) != (batch, limbs):
            raise ValueError(f"{name} must have shape (batch, limbs) = {(batch, limbs)}, got {tuple(value.shape)}")
        masks[name] = value if value.dtype == torch.bool else value != 0
    mask = masks["mask"]
    empty = (~mask.any(dim=-1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"every observation needs at least one real limb; the mask of sample(s) "
                         f"{empty.tolist()[:8]} is all zeros")
    keep = mask & masks["action_mask"] if "action_mask" in masks else mask
    return mask, keep


def _check_ids(name: str, ids: Any, batch: int, count: int, device: torch.device) -> torch.Tensor:
    ids = torch.as_tensor(ids, device=device)
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer indices, got dtype {ids.dtype}")
    if ids.dim() == 0:
        ids = ids.expand(batch)
    if tuple(ids.shape) != (batch,):
        raise ValueError(f"{name} must have shape (batch,) = ({batch},), got {tuple(ids.shape)}")
    bad = ((ids < 0) | (ids >= count)).nonzero().flatten()
    if len(bad):
        raise ValueError(f"{name} must be in [0, {count}); got {ids[bad[0]].item()} at sample {bad[0].item()}. "
                         f"Grow the table with add_{'body' if name == 'body_ids' else 'task'}() for a new one")
    return ids.long()


def _policy_outputs(model, hidden: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    action_mean = model.actor_head(hidden).squeeze(-1).masked_fill(~keep, 0.0)
    weights = mask.to(hidden.dtype)
    value = (model.value_head(hidden).squeeze(-1) * weights).sum(-1) / weights.sum(-1)
    action_log_std = model.log_std[: hidden.shape[1]].to(hidden.dtype).expand(hidden.shape[0], -1)
    return action_mean, action_log_std, value


# ---------------------------------------------------------------------------------------------- models


class DivMorphPreTrainedModel(PreTrainedModel):
    config_class = DivMorphConfig
    base_model_prefix = "divmorph"
    main_input_name = "tokens"
    _no_split_modules = ["DivMorphEncoderLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default draws for linears; each DivMorphLinear takes the SVD of such a draw."""
        if isinstance(module, DivMorphLinear):
            if not module.is_loaded() and not module.bias.is_meta:
                module.reset_from_dense(*_random_dense(module.out_features, module.in_features, module.bias))
        elif isinstance(module, (nn.Linear, DeployedLinear)):
            bound = 1.0 / math.sqrt(module.in_features)
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, DivMorphGateProjection) and name == "bias":
                    init.constant_(param, self.config.gate_bias_init)  # gates start mostly open
                else:
                    init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, DivMorphEncoder):
            init.normal_(module.limb_position_embedding, mean=0.0, std=0.02)
        elif isinstance(module, (DivMorphForContinuousControl, DivMorphSingleAgentPolicy)):
            init.constant_(module.log_std, getattr(self.config, "init_log_std", -0.5))


class DivMorphForContinuousControl(DivMorphPreTrainedModel):
    """The DivMorph actor-critic: limb tokens of any body in, one action per limb and a value out.

    ``forward(tokens, mask, body_ids, task_ids, action_mask=None)`` takes batched ``tokens
    (batch, limbs, token_dim)``, ``mask (batch, limbs)`` (1 = a real limb), the body and task
    indices ``(batch,)`` and optionally ``action_mask (batch, limbs)`` (1 = actuated), and returns
    a :class:`DivMorphOutput`. Add ``output.sparsity_loss`` to the RL loss to push the tailor gates
    towards 0.

    Parameter kinds (they partition the parameters):

    * learngene — the learngene units (``U``, ``V``, ``σ``) of every factorized linear, the dense
      input projection (unless ``factorize_input_projection``), the linears' biases, the
      LayerNorms, the limb-slot embedding, the actor and value heads and the log std: nothing a
      body or a task selects;
    * morphology tailors — the morphology units, the body embedding and its gate projections;
    * task tailors — the task units, the task embedding and its gate projections.

    Task transfer (:meth:`freeze_for_task_transfer`) trains the task embedding, the task gate
    projections and the σ of the task units (our choice: the directions ``U``, ``V`` stay fixed
    unless asked), plus the value head and log std, which follow the new reward.
    """

    def __init__(self, config: DivMorphConfig):
        super().__init__(config)
        if config.factorized:
            def make_linear(name: str, in_features: int, out_features: int) -> nn.Module:
                if name == "encoder.input_projection" and not config.factorize_input_projection:
                    return nn.Linear(in_features, out_features)  # a shared (learngene) layer; see the config
                return DivMorphLinear(in_features, out_features, config.unit_split)
        else:
            def make_linear(name: str, in_features: int, out_features: int) -> nn.Module:
                return nn.Linear(in_features, out_features)
        self.encoder = DivMorphEncoder(config, make_linear)
        self.actor_head = nn.Linear(config.hidden_size, 1)
        self.value_head = nn.Linear(config.hidden_size, 1)
        self.log_std = nn.Parameter(torch.full((config.max_limbs,), config.init_log_std))
        self.gate_network = DivMorphGateNetwork(config, self._gate_layout()) if config.factorized else None
        # the dense baseline has no gates: it reads the task from an embedding added to every limb's input
        # (its body it reads from the tokens, as MetaMorph's Transformer does)
        self.task_embedding = None if config.factorized else nn.Embedding(config.num_tasks, config.hidden_size)
        self.post_init()

    # ---- structure

    def factorized_linears(self) -> dict[str, DivMorphLinear]:
        """Every :class:`DivMorphLinear` by module name (empty for the dense baseline)."""
        return {name: module for name, module in self.named_modules() if isinstance(module, DivMorphLinear)}

    def _gate_layout(self) -> list[tuple[str, list[tuple[str, dict[str, int]]]]]:
        blocks: dict[str, list] = {}
        for name, linear in self.factorized_linears().items():
            parts = name.split(".")
            block = f"layer_{parts[2]}" if parts[1] == "layers" else "input"
            blocks.setdefault(block, []).append((name, dict(linear.counts)))
        return list(blocks.items())

    def gate_slices(self) -> list[tuple[str, str, int, int]]:
        """Where each linear's morphology and task gates lie in ``output.gates``: ``(name, kind, start, stop)``."""
        return [] if self.gate_network is None else self.gate_network.slices()

    @staticmethod
    def parameter_kind(name: str) -> str:
        """``"learngene"``, ``"morphology"`` or ``"task"`` for a parameter name of this model."""
        parts = name.split(".")
        if parts[0] == "gate_network":
            return "morphology" if parts[1] in ("body_embedding", "morphology_projections") else "task"
        if len(parts) >= 2 and parts[-2] in ("morphology", "morphology_factors"):
            return "morphology"
        if len(parts) >= 2 and parts[-2] in ("task", "task_factors"):
            return "task"
        return "learngene"

    def _parameters_of(self, kind: str) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if self.parameter_kind(name) == kind]

    def learngene_parameters(self) -> list[nn.Parameter]:
        """The shared parameters: learngene units, biases, norms, limb-slot embedding, heads, log std."""
        return self._parameters_of("learngene")

    def morphology_tailor_parameters(self) -> list[nn.Parameter]:
        """Morphology units (``U``, ``V``, ``σ``), the body embedding and its gate projections."""
        return self._parameters_of("morphology")

    def task_tailor_parameters(self) -> list[nn.Parameter]:
        """Task units (``U``, ``V``, ``σ``), the task embedding and its gate projections."""
        return self._parameters_of("task")

    # ---- forward

    def gate_values(self, body_ids: Any, task_ids: Any) -> torch.Tensor:
        """Gates ``(batch, tailor units)`` for the given bodies and tasks (layout: ``gate_slices()``)."""
        if self.gate_network is None:
            raise ValueError("the dense baseline (factorized=False) has no gates")
        device = self.log_std.device
        body_ids = torch.as_tensor(body_ids, device=device)
        batch = body_ids.shape[0] if body_ids.dim() else 1
        body_ids = _check_ids("body_ids", body_ids, batch, self.config.num_bodies, device)
        task_ids = _check_ids("task_ids", task_ids, batch, self.config.num_tasks, device)
        return self.gate_network(body_ids, task_ids)

    def _set_gates(self, gates: torch.Tensor | None) -> None:
        # The gates live on the layers for one forward pass (FactorizedLinear's design), so one
        # model object must not run two forward passes at once from different threads.
        linears = self.factorized_linears()
        per_linear: dict[str, dict[str, torch.Tensor]] = {name: {} for name in linears}
        if gates is not None:
            for name, kind, start, stop in self.gate_network.slices():
                per_linear[name][kind] = gates[..., start:stop]
        for name, linear in linears.items():
            linear.set_unit_gates(per_linear[name].get("morphology"), per_linear[name].get("task"))

    def forward(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        body_ids: torch.Tensor,
        task_ids: torch.Tensor,
        action_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> DivMorphOutput | tuple:
        mask, keep = _check_inputs(self.config, tokens, mask, action_mask)
        batch = tokens.shape[0]
        body_ids = _check_ids("body_ids", body_ids, batch, self.config.num_bodies, tokens.device)
        task_ids = _check_ids("task_ids", task_ids, batch, self.config.num_tasks, tokens.device)
        gates = None
        if self.gate_network is not None:
            gates = self.gate_network(body_ids, task_ids)
            self._set_gates(gates)
        try:
            condition = self.task_embedding(task_ids) if self.task_embedding is not None else None
            hidden = self.encoder(tokens, mask, condition)
        finally:
            if gates is not None:
                self._set_gates(None)  # no gate outlives its batch
        action_mean, action_log_std, value = _policy_outputs(self, hidden, mask, keep)
        if gates is not None and gates.numel() and self.config.gate != "top_k":  # top_k opens a fixed budget
            sparsity_loss = self.config.sparsity_weight * gates.mean()
        else:
            sparsity_loss = hidden.new_zeros(())
        if return_dict is False:
            return action_mean, action_log_std, value, gates, sparsity_loss
        return DivMorphOutput(action_mean=action_mean, action_log_std=action_log_std, value=value, gates=gates,
                              sparsity_loss=sparsity_loss)

    # ---- transfer

    def freeze_for_task_transfer(self, train_task_factors: bool = False, train_value_head: bool = True,
                                 train_log_std: bool = True) -> list[nn.Parameter]:
        """Freeze everything but the task side, for learning a new task with the learngene and
        morphology tailors fixed; returns the parameters left trainable (give them to the optimizer).

        Trained: the task embedding, the task gate projections and the task units' σ; their ``U``
        and ``V`` too with ``train_task_factors``; the value head and log std unless turned off
        (a new reward needs a new critic scale and its own exploration).
        """
        if self.gate_network is None:
            raise ValueError("the dense baseline (factorized=False) has no task tailors; fine-tune it whole")
        trainable = []
        for name, param in self.named_parameters():
            kind = self.parameter_kind(name)
            train = (kind == "task" and (train_task_factors or not name.endswith(("_factors.U", "_factors.V")))
                     or (train_value_head and name.startswith("value_head."))
                     or (train_log_std and name == "log_std"))
            param.requires_grad_(train)
            if train:
                trainable.append(param)
        return trainable

    def unfreeze(self) -> None:
        """Make every parameter trainable again."""
        for param in self.parameters():
            param.requires_grad_(True)

    @torch.no_grad()
    def _grow(self, table: str, init_row: str) -> int:
        if init_row not in ("mean", "random"):
            raise ValueError(f"init must be 'mean' (the average of the existing rows) or 'random', got {init_row!r}")
        count_field = "num_bodies" if table == "body_embedding" else "num_tasks"
        if any(not p.requires_grad for p in self.parameters()):
            # a new table is a new Parameter: a trainable list handed out by a freeze would miss it
            raise ValueError(f"add_{'body' if table == 'body_embedding' else 'task'}() on a frozen controller: add "
                             "bodies and tasks first, then call freeze_for_task_transfer() (or unfreeze() first)")
        index = getattr(self.config, count_field)
        if self.gate_network is not None:
            old = getattr(self.gate_network, table)
            new = nn.Embedding(index + 1, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
            new.weight[:index] = old.weight
            new.weight[index] = old.weight.mean(0) if init_row == "mean" else torch.randn_like(old.weight[0])
            new.weight.requires_grad_(old.weight.requires_grad)
            setattr(self.gate_network, table, new)
        setattr(self.config, count_field, index + 1)
        return index

    @torch.no_grad()
    def init_unseen(self, kind: str, ids: Sequence[int], seen: Sequence[int]) -> None:
        """Set the embedding rows of the bodies or tasks ``ids`` (``kind``: "body" or "task"), never
        trained, to the mean of the rows of the ``seen`` ones. A new task (or body) then starts from
        the average gate pattern, which opens units that were trained, instead of a random row's,
        which opens units no agent ever trained; the dense baseline's task embedding likewise."""
        if kind not in ("body", "task"):
            raise ValueError(f"kind must be 'body' or 'task', got {kind!r}")
        ids, seen = [int(i) for i in ids], [int(i) for i in seen]
        if not seen or set(ids) & set(seen):
            raise ValueError(f"init_unseen needs trained {kind} ids and new ones apart from them, got new {ids} "
                             f"and trained {seen}")
        if self.gate_network is not None:
            table = self.gate_network.body_embedding if kind == "body" else self.gate_network.task_embedding
        else:  # the baseline reads bodies from their tokens: only its task has an embedding
            table = self.task_embedding if kind == "task" else None
        if table is not None:
            table.weight[ids] = table.weight[seen].mean(0)

    def add_body(self, init: str = "mean") -> int:
        """Add a row to the body embedding (existing rows kept) and return the new body's index.

        ``init="mean"`` starts it at the average body (its gates near the average pattern),
        ``"random"`` draws it like a fresh row. Rebuild the optimizer afterwards: the table is new.
        Refused on a frozen controller: grow first, then :meth:`freeze_for_task_transfer`.
        """
        return self._grow("body_embedding", init)

    def add_task(self, init: str = "mean") -> int:
        """Add a row to the task embedding (existing rows kept) and return the new task's index; see
        :meth:`add_body`."""
        return self._grow("task_embedding", init)

    # ---- single-agent deployment

    @torch.no_grad()
    def single_agent(self, body_id: int, task_id: int, threshold: float | None = None,
                     min_scale: float = 0.0) -> "DivMorphSingleAgentPolicy":
        """The controller of one body and task with its gates folded into the weights and the
        units it does not use dropped: a plain, smaller :class:`DivMorphSingleAgentPolicy`.

        A tailor unit is kept when its gate is ``>= threshold`` (default ``config.gate_threshold``)
        and ``gate·|σ| > min_scale``; learngene units are always kept (they are the shared part
        every agent uses). Each linear's kept units are merged into ``(out×k)(k×in)`` factors when
        that is smaller than the dense ``out×in`` matrix, else into the dense matrix.

        With ``threshold=0`` every unit that contributes anything is kept and the policy's actions
        equal the full model's for this agent up to float rounding (tested to 1e-5). With a
        threshold it is an approximation: each linear's weight changes by exactly the dropped units
        ``Σ σ_i g_i u_i v_iᵀ``, whose largest relative size ``‖ΔW‖_F / ‖W‖_F`` over the linears is
        recorded in ``config.max_relative_weight_change``. With ``gate="straight_through"`` the
        dropped units have gate 0 and the match is exact; with soft sigmoid gates the dropped units
        still had gates below the threshold, and the actions may differ by what those units
        contributed — check the recorded change (a few percent is the usual tolerance) or compare
        actions on observations of this body before deploying.
        """
        if self.gate_network is None:
            raise ValueError("the dense baseline (factorized=False) has no units to select; deploy it as it is")
        threshold = self.config.gate_threshold if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold compares gate values and must be in [0, 1], got {threshold}")
        if min_scale < 0:
            raise ValueError(f"min_scale must be >= 0, got {min_scale}")
        was_training = self.training
        self.eval()
        gates = self.gate_values([body_id], [task_id])[0]
        self.train(was_training)
        per_linear: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.factorized_linears()}
        for name, kind, start, stop in self.gate_network.slices():
            per_linear[name][kind] = gates[start:stop]

        ranks, merged, largest_change = {}, {}, 0.0
        for name, linear in self.factorized_linears().items():
            columns, rows = [], []
            full = torch.zeros(linear.out_features, linear.in_features, dtype=torch.float64, device=gates.device)
            for kind, (u, sigma, v, gate) in linear.units(per_linear[name].get("morphology"),
                                                          per_linear[name].get("task")).items():
                scale = (sigma * gate).double()
                full += (u.double() * scale) @ v.double().T
                keep = torch.ones_like(gate, dtype=torch.bool) if kind == "learngene" else (
                    (gate >= threshold) & (scale.abs() > min_scale))
                columns.append(u.double()[:, keep] * scale[keep])
                rows.append(v.double()[:, keep].T)
            up, down = torch.cat(columns, dim=1), torch.cat(rows, dim=0)
            kept = up @ down
            largest_change = max(largest_change, ((full - kept).norm() / full.norm().clamp_min(1e-30)).item())
            rank = up.shape[1]
            if rank * (linear.in_features + linear.out_features) < linear.in_features * linear.out_features:
                ranks[name], merged[name] = rank, {"up": up, "down": down}
            else:
                ranks[name], merged[name] = None, {"weight": kept}
            merged[name]["bias"] = linear.bias.double()

        config = DivMorphSingleAgentConfig(
            token_dim=self.config.token_dim, max_limbs=self.config.max_limbs, hidden_size=self.config.hidden_size,
            num_layers=self.config.num_layers, num_heads=self.config.num_heads,
            intermediate_size=self.config.intermediate_size, dropout=self.config.dropout,
            layer_norm_eps=self.config.layer_norm_eps, linear_ranks=ranks, body_id=int(body_id), task_id=int(task_id),
            threshold=threshold, min_scale=float(min_scale), source_parameters=self.num_parameters(),
            max_relative_weight_change=largest_change)
        policy = DivMorphSingleAgentPolicy(config).to(device=self.log_std.device, dtype=self.log_std.dtype)
        shared = {name: tensor for name, tensor in self.state_dict().items()
                  if not name.startswith("gate_network.") and not any(name.startswith(f"{linear}.")
                                                                      for linear in merged)}
        missing, unexpected = policy.load_state_dict(shared, strict=False)
        if unexpected or any(not any(key.startswith(f"{linear}.") for linear in merged) for key in missing):
            raise RuntimeError(f"single-agent policy does not match the controller: missing {missing}, "
                               f"unexpected {unexpected}")
        for name, tensors in merged.items():
            target = policy.get_submodule(name)
            for attribute, tensor in tensors.items():
                getattr(target, attribute).copy_(tensor)
        return policy.eval()

    # ---- learngene

    def learngene_state_dict(self) -> dict[str, torch.Tensor]:
        """The saved learngene: the learngene units (``U``, ``V``, ``σ``) of every factorized linear,
        the dense input projection, the linears' biases, the LayerNorms, the limb-slot embedding and
        the actor head — everything
        shared by all bodies and tasks except the value head and log std (they follow the source's
        reward and training stage; a new controller starts them fresh)."""
        if self.gate_network is None:
            raise ValueError("the dense baseline (factorized=False) has no learngene; build it with factorized=True")
        return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in self.state_dict().items()
                if self.parameter_kind(name) == "learngene" and not name.startswith(_NOT_IN_SAVED_LEARNGENE)}

    def _learngene_info(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        model_config = {field: getattr(self.config, field) for field in _CONFIG_FIELDS}
        units = {kind: sum(linear.counts[kind] for linear in self.factorized_linears().values()) for kind in UNIT_KINDS}
        return {
            "learngene_type": "divmorph",
            "format_version": LEARNGENE_FORMAT_VERSION,
            "model_config": model_config,
            "source_num_bodies": self.config.num_bodies,
            "source_num_tasks": self.config.num_tasks,
            "units": units,
            "stored_values": sum(t.numel() for t in state.values()),
            "source_parameters": self.num_parameters(),
            "tensors": {name: list(t.shape) for name, t in state.items()},
        }

    def _write_learngene(self, folder: Path, name: str, tags: list[str] | None = None) -> None:
        from safetensors.torch import save_file

        state = self.learngene_state_dict()
        info = self._learngene_info(state)
        save_file(state, str(folder / LEARNGENE_WEIGHTS_NAME), metadata={"format": "pt", "learngene": "divmorph"})
        (folder / LEARNGENE_CONFIG_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _learngene_card(info, name, tags).save(folder / "README.md")

    def save_learngene(self, save_directory: str | os.PathLike, tags: list[str] | None = None) -> Path:
        """Write the learngene (``learngene.safetensors``, ``learngene_config.json``, ``README.md``)
        into ``save_directory``, atomically: a failure leaves the folder as it was."""
        return write_folder_atomically(save_directory,
                                       lambda staging: self._write_learngene(staging, os.fspath(save_directory), tags))

    def push_learngene_to_hub(self, repo_id: str, *, commit_message: str | None = None, private: bool | None = None,
                              token: str | bool | None = None, revision: str | None = None, create_pr: bool = False,
                              tags: list[str] | None = None):
        """Upload the learngene and its model card to ``repo_id`` in one commit; returns the ``CommitInfo``."""
        self.learngene_state_dict()  # the dense baseline is refused before anything is sent
        return push_folder(repo_id, lambda folder, full_id: self._write_learngene(folder, full_id, tags),
                           what="DivMorph learngene", commit_message=commit_message or "Upload DivMorph learngene",
                           private=private, token=token, revision=revision, create_pr=create_pr)

    @classmethod
    @torch.no_grad()
    def from_learngene(cls, learngene: str | os.PathLike, num_bodies: int, num_tasks: int, *,
                       revision: str | None = None, token: str | bool | None = None,
                       **config_overrides: Any) -> "DivMorphForContinuousControl":
        """A controller for ``num_bodies`` bodies and ``num_tasks`` tasks whose learngene units and
        shared weights come from ``learngene`` (a folder or a Hub repo id).

        Its tailor units are drawn fresh: the SVD of a fresh random weight with the learngene's
        column and row spaces projected out, so all units stay orthogonal; the embeddings, gate
        projections, value head and log std are new. ``config_overrides`` may change anything but
        the sizes the learngene fixes (``LEARNGENE_SIZE_FIELDS``); those are refused with an error.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = _learngene_folder(learngene, revision, token)
        info = _read_learngene_info(folder)
        fields = dict(info["model_config"])
        fields.setdefault("factorize_input_projection", True)  # saved before the field: it was factorized
        for field, value in config_overrides.items():
            if field in LEARNGENE_SIZE_FIELDS and value != fields.get(field):
                raise LearngeneConfigError(
                    f"this DivMorph learngene has {field}={fields.get(field)!r}, the request asks for {value!r}; a "
                    f"learngene fixes {', '.join(LEARNGENE_SIZE_FIELDS)} — build with the learngene's values (for "
                    "another token_dim or max_limbs the observations must be made to match)")
            if field not in _CONFIG_FIELDS:
                raise LearngeneConfigError(
                    f"unknown DivMorphConfig field '{field}'; fields: {', '.join(_CONFIG_FIELDS)}")
        fields.update(config_overrides, num_bodies=num_bodies, num_tasks=num_tasks)
        model = cls(DivMorphConfig(**fields))
        try:
            state = load_file(str(folder / LEARNGENE_WEIGHTS_NAME))
        except (OSError, SafetensorError) as error:
            raise LearngeneLoadError(f"cannot read {folder / LEARNGENE_WEIGHTS_NAME}: {error}; the learngene is "
                                     "missing or corrupt, save or download it again") from None
        expected = model.learngene_state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        wrong = [f"{name} {tuple(state[name].shape)} (expected {tuple(expected[name].shape)})"
                 for name in expected if name in state and state[name].shape != expected[name].shape]
        if missing or unexpected or wrong:
            raise LearngeneLoadError(
                f"the learngene in {folder} does not fit its own config: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}, wrong shapes {wrong[:5]}; it is corrupt or was written by another version")
        model.load_state_dict(state, strict=False)
        for linear in model.factorized_linears().values():
            linear.reset_tailors_from_dense(_random_dense(linear.out_features, linear.in_features, linear.bias)[0])
        return model


class DivMorphSingleAgentPolicy(PreTrainedModel):
    """One body's and task's DivMorph controller with no gates or embeddings: the gates are folded
    into the weights and inactive tailor units removed. Made by
    :meth:`DivMorphForContinuousControl.single_agent`; saves and loads like any model.

    ``forward(tokens, mask, action_mask=None)`` returns a :class:`DivMorphOutput` without gates;
    :meth:`deployment_summary` reports its size against the full controller.
    """

    config_class = DivMorphSingleAgentConfig
    base_model_prefix = "divmorph"
    main_input_name = "tokens"
    _no_split_modules = ["DivMorphEncoderLayer"]
    _init_weights = DivMorphPreTrainedModel._init_weights

    def __init__(self, config: DivMorphSingleAgentConfig):
        super().__init__(config)
        ranks = config.linear_ranks

        def make_linear(name: str, in_features: int, out_features: int) -> nn.Module:
            return DeployedLinear(in_features, out_features, ranks.get(name))

        self.encoder = DivMorphEncoder(config, make_linear)
        self.actor_head = nn.Linear(config.hidden_size, 1)
        self.value_head = nn.Linear(config.hidden_size, 1)
        self.log_std = nn.Parameter(torch.zeros(config.max_limbs))
        self.post_init()

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, action_mask: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs: Any) -> DivMorphOutput | tuple:
        mask, keep = _check_inputs(self.config, tokens, mask, action_mask)
        hidden = self.encoder(tokens, mask)
        action_mean, action_log_std, value = _policy_outputs(self, hidden, mask, keep)
        if return_dict is False:
            return action_mean, action_log_std, value
        return DivMorphOutput(action_mean=action_mean, action_log_std=action_log_std, value=value)

    def deployment_summary(self) -> dict[str, Any]:
        """Parameters here and in the full controller, their ratio, kept units per linear and the
        largest relative weight change the dropped units caused."""
        parameters = self.num_parameters()
        source = self.config.source_parameters
        return {
            "parameters": parameters,
            "source_parameters": source,
            "compression": source / parameters if parameters else float("inf"),
            "linear_ranks": dict(self.config.linear_ranks),
            "max_relative_weight_change": self.config.max_relative_weight_change,
            "body_id": self.config.body_id,
            "task_id": self.config.task_id,
            "threshold": self.config.threshold,
        }


# ---------------------------------------------------------------------------------------------- learngene files


def _learngene_folder(source: str | os.PathLike, revision: str | None, token: str | bool | None) -> Path:
    """A local learngene folder, or the Hub repo ``source`` downloaded (only its JSON, safetensors and card)."""
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(str(source), revision=revision, token=token,
                                      allow_patterns=[LEARNGENE_CONFIG_NAME, LEARNGENE_WEIGHTS_NAME, "README.md"]))
    except RevisionNotFoundError:
        raise LearngeneLoadError(f"revision '{revision}' does not exist in the Hub repository '{source}'") from None
    except RepositoryNotFoundError:
        raise LearngeneLoadError(f"'{source}' is neither a local folder nor a Hub repository you can access") from None
    except HFValidationError:
        raise LearngeneLoadError(f"'{source}' is neither a local folder nor a valid Hub repository id") from None
    except LocalEntryNotFoundError:
        raise LearngeneLoadError(f"'{source}' is not a local folder and the Hub cannot be reached; pass a local "
                                 "folder or download it once while online") from None


def _read_learngene_info(folder: Path) -> dict[str, Any]:
    path = folder / LEARNGENE_CONFIG_NAME
    if not path.is_file():
        raise LearngeneLoadError(f"{folder} is not a DivMorph learngene: {LEARNGENE_CONFIG_NAME} is missing "
                                 "(write one with DivMorphForContinuousControl.save_learngene)")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LearngeneLoadError(f"cannot read {path}: {error}; save or download the learngene again") from None
    if not isinstance(info, dict) or info.get("learngene_type") != "divmorph":
        raise LearngeneLoadError(f"{path} does not describe a DivMorph learngene (learngene_type "
                                 f"{info.get('learngene_type') if isinstance(info, dict) else None!r})")
    if info.get("format_version") != LEARNGENE_FORMAT_VERSION or not isinstance(info.get("model_config"), dict):
        raise LearngeneLoadError(f"{path} has format_version {info.get('format_version')!r}; this version of "
                                 f"hf_learngene reads format {LEARNGENE_FORMAT_VERSION}")
    return info


def _learngene_card(info: dict[str, Any], name: str, tags: list[str] | None):
    """The README.md of a learngene; ``name`` is its Hub repo id or the folder it was saved to."""
    from huggingface_hub import ModelCard, ModelCardData

    config = info["model_config"]
    metadata = ModelCardData(
        library_name="hf-learngene",
        tags=sorted({"learngene", "learngene-divmorph", "reinforcement-learning", "robotics", "morphology-control",
                     *(tags or [])}),
        learngene={"method": "divmorph", "units": info["units"], "stored_values": info["stored_values"],
                   "source_parameters": info["source_parameters"], "source_num_bodies": info["source_num_bodies"],
                   "source_num_tasks": info["source_num_tasks"]},
    )
    sizes = (f"{config['num_layers']} layers, hidden {config['hidden_size']}, {config['num_heads']} heads, "
             f"MLP {config['intermediate_size']}")
    text = f"""# {Path(name).name}

A **DivMorph learngene** (knowledge diversion for morphology control; Feng, Shi, Xie et al., ICML 2026),
saved with [hf_learngene](https://pypi.org/project/hf-learngene/): the shared rank-1 units of every
linear of a limb-token Transformer controller — the units no body or task gate selects — with the
controller's biases, LayerNorms, limb-slot embedding and actor head. A controller for a new set of
bodies and tasks gets these units and fresh morphology and task tailors.

## Use

```python
from hf_learngene.modeling.divmorph import DivMorphForContinuousControl

model = DivMorphForContinuousControl.from_learngene("{name}", num_bodies=10, num_tasks=1)
out = model(tokens, mask, body_ids, task_ids)   # action_mean, action_log_std, value, gates, sparsity_loss
```

## Details

| | |
|---|---|
| Transformer | {sizes} |
| limb tokens | up to {config['max_limbs']} limbs of {config['token_dim']} features |
| unit split | {config['unit_split']} |
| units stored | {info['units']['learngene']:,} learngene units (of {sum(info['units'].values()):,}) |
| stored values | {info['stored_values']:,} (the source controller had {info['source_parameters']:,} parameters) |
| source | {info['source_num_bodies']} bodies, {info['source_num_tasks']} tasks |

The sizes above are fixed by the learngene; the number of bodies and tasks, the embedding sizes and
the gate options are free.
"""
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{text}")
