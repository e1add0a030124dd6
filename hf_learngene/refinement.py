"""FRONT's spectral refinement: train the source briefly while penalising the energy of its
weights outside the low-frequency DCT block a learngene keeps, then extract.

The penalty for one stacked role ``x`` (layers included, mean removed as FRONT does) is the
share of its energy that a FRONT learngene with the same ``keep`` would drop::

    R(x) = (‖x‖² − ‖C_k x‖²) / ‖x‖²        (C_k: the kept rows of the orthonormal DCT on every resizable axis)

averaged over the roles and multiplied by ``weight``. The paper publishes neither the weight nor
a schedule; ``weight`` is an option here and the benchmark reports what it measured.

Use it as a loss term in any loop (``loss = task_loss + regularizer()``), as a ``Trainer``
callback (:class:`SpectralRegularizerCallback`), or through :func:`refine`. It needs every weight
whole on every process: under FSDP or DeepSpeed each process holds shards, the
penalty of a shard is not the penalty of the weight, and the callback's separate ``backward()``
never reaches the sharded gradients, so those setups are refused with a clear error.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping

import torch
from transformers import PreTrainedModel, TrainerCallback

from .architectures import architecture_for, expanded_shape
from .errors import LearngeneConfigError
from .learngene import group_by_role, canonical_state, signal_spec
from .methods.front import FrontResizer, dct


class SpectralRegularizer:
    """``weight`` × the mean share of weight energy outside FRONT's kept low-frequency block."""

    def __init__(self, model: PreTrainedModel, keep: float | Mapping[str, float | int] = 0.5, weight: float = 1e-2):
        if weight < 0:
            raise ValueError(f"the regulariser weight must be ≥ 0, got {weight}")
        sharding = parameter_sharding(model)
        if sharding:
            raise LearngeneConfigError(_refusal(sharding))
        self.weight = weight
        front = FrontResizer(keep)
        arch = architecture_for(model.config.model_type)
        sizes = arch.axis_sizes(model.config)
        self._roles = []
        for param, members in group_by_role(arch, canonical_state(model, keep_vars=True), "model", model.config).values():
            spec = signal_spec(param)
            shape = expanded_shape(param, sizes)
            kept = front.stored_shape(spec, shape)
            if tuple(kept) == tuple(shape):  # nothing outside the block
                continue
            tensors = [members[layer][1] for layer in sorted(members, key=lambda i: -1 if i is None else i)]
            if param.layered and param.first_layer:  # layers without the tensor count as its identity, as stored
                tensors = [torch.full_like(tensors[0], param.identity).detach()] * param.first_layer + tensors
            self._roles.append((param.layered, tensors, shape, kept, spec.resizable))

    def high_frequency_share(self) -> torch.Tensor:
        """The unweighted penalty: mean over roles of the energy share outside the kept block."""
        shares = []
        for layered, tensors, shape, kept, resizable in self._roles:
            x = (torch.stack(tensors) if layered else tensors[0]).reshape(shape)
            x = x - x.mean()  # FRONT standardises each role first; the mean sits in the kept block anyway
            low = x
            for axis, free in enumerate(resizable):
                if free and kept[axis] < shape[axis]:
                    low = dct(low, axis, kept[axis])  # by FFT: no n×n matrix at LLM widths
            energy = x.pow(2).sum()
            shares.append((energy - low.pow(2).sum()) / energy.clamp_min(1e-12))
        if not shares:
            return torch.zeros(())
        return torch.stack(shares).mean()

    def __call__(self) -> torch.Tensor:
        return self.weight * self.high_frequency_share()


class SpectralRegularizerCallback(TrainerCallback):
    """Adds the regulariser's gradient before every optimizer step of a ``transformers.Trainer``.

    Equivalent to adding ``regularizer()`` to the loss once per optimizer step. With fp16 loss
    scaling, add the regulariser to the loss instead (its gradient here is not scaled).
    """

    def __init__(self, keep: float | Mapping[str, float | int] = 0.5, weight: float = 1e-2):
        self.keep, self.weight = keep, weight
        self._regularizer: SpectralRegularizer | None = None
        self.history: list[float] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        """Refuse FSDP and DeepSpeed before the first step rather than drop the penalty silently."""
        sharding = training_sharding(args) or (parameter_sharding(model) if model is not None else None)
        if sharding:
            raise LearngeneConfigError(_refusal(sharding))

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self._regularizer is None:
            self._regularizer = SpectralRegularizer(model, self.keep, self.weight)
        penalty = self._regularizer()
        penalty.backward()
        self.history.append(penalty.item())


def parameter_sharding(model: torch.nn.Module) -> str | None:
    """What shards the model's parameters across processes (FSDP, DTensor, DeepSpeed ZeRO-3), or ``None``."""
    if torch.distributed.is_available():
        from torch.distributed import fsdp
        from torch.distributed.tensor import DTensor

        wrappers = tuple(getattr(fsdp, name) for name in ("FullyShardedDataParallel", "FSDPModule") if hasattr(fsdp, name))
        if any(isinstance(module, wrappers) for module in model.modules()):
            return "FSDP"
        if any(isinstance(parameter, DTensor) for parameter in model.parameters()):
            return "DTensor parameters (FSDP2 or tensor parallelism)"
    if any(hasattr(parameter, "ds_id") for parameter in model.parameters()):  # DeepSpeed ZeRO-3 marks its shards
        return "DeepSpeed ZeRO-3"
    return None


def training_sharding(args: Any) -> str | None:
    """FSDP or DeepSpeed asked for by ``TrainingArguments`` or by the accelerate config of this process, or ``None``."""
    if getattr(args, "fsdp", None):
        return "FSDP (TrainingArguments.fsdp)"
    if getattr(args, "deepspeed", None):
        return "DeepSpeed (TrainingArguments.deepspeed)"
    from accelerate.state import AcceleratorState, is_initialized
    from accelerate.utils import DistributedType

    if is_initialized():
        distributed_type = AcceleratorState().distributed_type
        if distributed_type == DistributedType.FSDP:
            return "FSDP (the accelerate config)"
        if distributed_type == DistributedType.DEEPSPEED:
            return "DeepSpeed (the accelerate config)"
    return None


def _refusal(sharding: str) -> str:
    return (
        f"the spectral regulariser cannot run under {sharding}: it needs every weight whole on every process, "
        "and with sharded parameters its penalty and gradient would be wrong or silently dropped. Refine with "
        "unsharded parameters (e.g. on one device with refine() or SpectralRegularizerCallback), then extract the learngene"
    )


def refine(
    model: PreTrainedModel,
    batches: Iterable[Mapping[str, Any]],
    steps: int,
    *,
    keep: float | Mapping[str, float | int] = 0.5,
    weight: float = 1e-2,
    lr: float = 1e-5,
) -> list[dict[str, float]]:
    """Continue training ``model`` for ``steps`` on ``batches`` (cycled) with the regulariser.

    Each batch is passed as ``model(**batch)`` and must produce a ``loss``. Returns the history
    of task loss and high-frequency share; extract afterwards with ``Learngene.extract(model,
    method="front", keep=keep)``.
    """
    regularizer = SpectralRegularizer(model, keep, weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    history = []
    for _, batch in zip(range(steps), itertools.cycle(batches)):
        task_loss = model(**batch).loss
        share = regularizer.high_frequency_share()
        (task_loss + weight * share).backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append({"loss": task_loss.item(), "high_frequency_share": share.item()})
    model.eval()
    return history
