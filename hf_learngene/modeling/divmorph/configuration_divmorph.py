"""Configuration of DivMorph, the knowledge-diversion Transformer controller for many robot bodies."""

from __future__ import annotations

import math
from typing import Any

from transformers import PretrainedConfig

UNIT_KINDS = ("learngene", "morphology", "task")
GATE_TYPES = ("sigmoid", "straight_through", "top_k")
DEFAULT_UNIT_SPLIT = {"learngene": 0.5, "morphology": 0.25, "task": 0.25}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def unit_counts(rank: int, unit_split: dict[str, float]) -> dict[str, int]:
    """How many of a linear's ``rank`` rank-1 units are learngene, morphology and task units.

    The tailor counts are rounded from their fractions; the learngene takes the rest, so the
    three counts always add up to ``rank``.
    """
    morphology = min(rank, round(rank * unit_split["morphology"]))
    task = min(rank - morphology, round(rank * unit_split["task"]))
    return {"learngene": rank - morphology - task, "morphology": morphology, "task": task}


class DivMorphConfig(PretrainedConfig):
    """The sizes and gating choices of a :class:`DivMorphForContinuousControl`.

    DivMorph (Feng, Shi, Xie et al., "Knowledge Diversion for Efficient Morphology Control and
    Policy Transfer", ICML 2026) is a limb-token Transformer controller (MetaMorph's design) whose
    every weight matrix is split, before training, by the SVD of its own random initialisation into
    rank-1 *factor units*. Soft gates computed from a morphology embedding and a task embedding
    scale the units, which divides them into shared *learngenes* and morphology- and task-specific
    *tailors*.

    What the paper states: the SVD of the random init into rank-1 units; the three unit kinds
    (``r = N_G + N_κ + N_τ``); soft gates driven by learned morphology and task embeddings; only
    the units a body and task select are deployed for a single agent; task transfer trains the
    task side while the learngene stays fixed. What it leaves open, and our defaults here: the
    unit split (half learngene, a quarter each tailor kind, largest singular values to the
    learngene), the gate function (a sigmoid), how gates are computed (one linear projection per
    Transformer block from each embedding, one gate value per unit), the sparsity pressure (L1 on
    the tailor gates), the deployment threshold (0.5 on the gate value), the sizes (MetaMorph-like
    but smaller: 3 layers, hidden 128, 2 heads, MLP 256) and GELU activations.

    Args:
        token_dim: features per limb token (``TOKEN_DIM`` of ``hf_learngene.morphology.tokens``).
        max_limbs: limb slots per observation; shorter bodies are padded and masked.
        num_bodies: rows of the morphology embedding table (one per body of the suite).
        num_tasks: rows of the task embedding table.
        hidden_size: width of the Transformer.
        num_layers: Transformer blocks.
        num_heads: attention heads; must divide ``hidden_size``.
        intermediate_size: width of each block's MLP.
        dropout: dropout on attention weights and on each residual branch (0: RL policies usually
            train without it).
        morphology_embedding_dim: size of a body's learned embedding, the input of its gates.
        task_embedding_dim: size of a task's learned embedding, the input of its gates.
        factorized: ``True`` for DivMorph; ``False`` for the MetaMorph-style baseline: the same
            Transformer with dense linears, no embeddings and no gates.
        factorize_input_projection: whether the limb-token input projection (``token_dim`` →
            ``hidden_size``) is made of factor units too. Off by default (ours; the paper speaks of
            the Transformer's weights): its rank is only ``token_dim`` (30), so a unit split and a
            gate budget sized for the blocks would leave it without learngene units and with one
            or two open units per agent — every limb token squeezed into two directions. Dense, it
            is a shared (learngene) layer.
        unit_split: fractions of each linear's rank-1 units that are learngene units (gate always
            1), morphology tailors (gated by the body embedding) and task tailors (gated by the
            task embedding). Fractions in [0, 1] that add up to 1.
        gate: how a gate logit becomes a gate value. ``"sigmoid"``: a soft gate in (0, 1), as the
            paper describes; deployment then drops units below the threshold, an approximation.
            ``"straight_through"``: the forward pass uses the hard gate ``sigmoid(logit) >=
            gate_threshold`` (0 or 1) and the backward pass the sigmoid's gradient, so training
            sees exactly what deployment keeps.
            ``"top_k"`` (ours): a budget instead of a pressure. For every agent, each linear opens
            exactly its ``gate_density`` share of morphology units and of task units — those with
            the largest gate logits — as hard 0/1 gates, with the sigmoid's gradient in the
            backward pass (a unit outside the budget still learns whether it would help). The
            size of a deployed single agent is then fixed by the configuration, and what it runs
            is exactly what was trained; ``sparsity_weight`` has no effect.
        gate_density: with ``gate="top_k"``, the share of each linear's morphology units (and of
            its task units) open for one agent, in (0, 1]; at least one unit of each kind opens.
        gate_threshold: gate value at and above which a tailor unit counts as active (deployment
            and the straight-through gate); in [0, 1].
        gate_bias_init: initial bias of the gate projections; ``sigmoid(2.0) ≈ 0.88`` starts the
            tailors mostly open, so that the sparsity pressure decides which ones close.
        sparsity_weight: weight of the L1 pressure on the tailor gates (``sparsity_loss`` =
            weight × mean tailor gate); 0 turns it off.
        init_log_std: initial value of the learned, state-independent log std of the actions.
        layer_norm_eps: epsilon of every LayerNorm.
    """

    model_type = "divmorph"

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "DivMorphConfig":
        # a controller saved before factorize_input_projection existed had a factorized input projection
        return super().from_dict({"factorize_input_projection": True, **config_dict}, **kwargs)

    def __init__(
        self,
        token_dim: int = 30,
        max_limbs: int = 12,
        num_bodies: int = 1,
        num_tasks: int = 1,
        hidden_size: int = 128,
        num_layers: int = 3,
        num_heads: int = 2,
        intermediate_size: int = 256,
        dropout: float = 0.0,
        morphology_embedding_dim: int = 32,
        task_embedding_dim: int = 32,
        factorized: bool = True,
        factorize_input_projection: bool = False,
        unit_split: dict[str, float] | None = None,
        gate: str = "sigmoid",
        gate_threshold: float = 0.5,
        gate_density: float = 0.1,
        gate_bias_init: float = 2.0,
        sparsity_weight: float = 1e-3,
        init_log_std: float = -0.5,
        layer_norm_eps: float = 1e-5,
        **kwargs: Any,
    ):
        for name, value in (("token_dim", token_dim), ("max_limbs", max_limbs), ("num_bodies", num_bodies),
                            ("num_tasks", num_tasks), ("hidden_size", hidden_size), ("num_layers", num_layers),
                            ("num_heads", num_heads), ("intermediate_size", intermediate_size),
                            ("morphology_embedding_dim", morphology_embedding_dim),
                            ("task_embedding_dim", task_embedding_dim)):
            _positive_int(name, value)
        if hidden_size % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide hidden_size ({hidden_size}); "
                             f"try num_heads in {[h for h in range(1, hidden_size + 1) if hidden_size % h == 0][:8]}")
        if not 0.0 <= _finite("dropout", dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not isinstance(factorized, bool):
            raise ValueError(f"factorized must be True (DivMorph) or False (dense baseline), got {factorized!r}")
        unit_split = dict(DEFAULT_UNIT_SPLIT if unit_split is None else unit_split)
        if set(unit_split) != set(UNIT_KINDS):
            raise ValueError(f"unit_split needs exactly the keys {list(UNIT_KINDS)}, got {sorted(unit_split)}")
        for kind, fraction in unit_split.items():
            if not 0.0 <= _finite(f"unit_split['{kind}']", fraction) <= 1.0:
                raise ValueError(f"unit_split['{kind}'] must be a fraction in [0, 1], got {fraction}")
        if abs(sum(unit_split.values()) - 1.0) > 1e-6:
            raise ValueError(f"the fractions of unit_split must add up to 1, got {unit_split} "
                             f"(sum {sum(unit_split.values()):.6g})")
        if gate not in GATE_TYPES:
            raise ValueError(f"gate must be one of {list(GATE_TYPES)}, got {gate!r}")
        if not 0.0 <= _finite("gate_threshold", gate_threshold) <= 1.0:
            raise ValueError(f"gate_threshold must be in [0, 1] (it compares gate values), got {gate_threshold}")
        if not 0.0 < _finite("gate_density", gate_density) <= 1.0:
            raise ValueError(f"gate_density must be in (0, 1] (the share of tailor units open per agent), got "
                             f"{gate_density}")
        if _finite("sparsity_weight", sparsity_weight) < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {sparsity_weight}")
        if _finite("layer_norm_eps", layer_norm_eps) <= 0:
            raise ValueError(f"layer_norm_eps must be > 0, got {layer_norm_eps}")
        _finite("gate_bias_init", gate_bias_init)
        _finite("init_log_std", init_log_std)

        self.token_dim = token_dim
        self.max_limbs = max_limbs
        self.num_bodies = num_bodies
        self.num_tasks = num_tasks
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = float(dropout)
        self.morphology_embedding_dim = morphology_embedding_dim
        self.task_embedding_dim = task_embedding_dim
        self.factorized = factorized
        self.factorize_input_projection = bool(factorize_input_projection)
        self.unit_split = {kind: float(unit_split[kind]) for kind in UNIT_KINDS}
        self.gate = gate
        self.gate_threshold = float(gate_threshold)
        self.gate_density = float(gate_density)
        self.gate_bias_init = float(gate_bias_init)
        self.sparsity_weight = float(sparsity_weight)
        self.init_log_std = float(init_log_std)
        self.layer_norm_eps = float(layer_norm_eps)
        super().__init__(**kwargs)


class DivMorphSingleAgentConfig(PretrainedConfig):
    """The sizes of a :class:`DivMorphSingleAgentPolicy`: one body's and task's DivMorph controller
    with the gates folded in and the inactive units dropped.

    Args:
        token_dim, max_limbs, hidden_size, num_layers, num_heads, intermediate_size, dropout,
            layer_norm_eps: as in :class:`DivMorphConfig`.
        linear_ranks: for each linear of the encoder (by its module name), the number of units
            kept, stored as two low-rank factors, or ``None`` when the dense matrix is smaller.
        body_id, task_id: the agent it was made for.
        threshold, min_scale: the deployment rule it was made with (see ``single_agent``).
        source_parameters: parameters of the full DivMorph controller it came from.
        max_relative_weight_change: the largest ``‖W_full − W_kept‖_F / ‖W_full‖_F`` over the
            linears — 0 when every active unit was kept.
    """

    model_type = "divmorph_single_agent"

    def __init__(
        self,
        token_dim: int = 30,
        max_limbs: int = 12,
        hidden_size: int = 128,
        num_layers: int = 3,
        num_heads: int = 2,
        intermediate_size: int = 256,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        linear_ranks: dict[str, int | None] | None = None,
        body_id: int = 0,
        task_id: int = 0,
        threshold: float = 0.5,
        min_scale: float = 0.0,
        source_parameters: int = 0,
        max_relative_weight_change: float = 0.0,
        **kwargs: Any,
    ):
        for name, value in (("token_dim", token_dim), ("max_limbs", max_limbs), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("num_heads", num_heads),
                            ("intermediate_size", intermediate_size)):
            _positive_int(name, value)
        if hidden_size % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide hidden_size ({hidden_size})")
        linear_ranks = dict(linear_ranks or {})
        for name, rank in linear_ranks.items():
            if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 0):
                raise ValueError(f"linear_ranks['{name}'] must be None (dense) or an integer >= 0, got {rank!r}")
        self.token_dim = token_dim
        self.max_limbs = max_limbs
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = float(dropout)
        self.layer_norm_eps = float(layer_norm_eps)
        self.linear_ranks = linear_ranks
        self.body_id = body_id
        self.task_id = task_id
        self.threshold = float(threshold)
        self.min_scale = float(min_scale)
        self.source_parameters = source_parameters
        self.max_relative_weight_change = float(max_relative_weight_change)
        super().__init__(**kwargs)
