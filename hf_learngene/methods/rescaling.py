"""How the amplitude of a resized tensor is set: one policy shared by every method.

Before resizing, each stacked role tensor is standardised (its own mean and std removed);
after resizing, the policy decides the std the result gets, and the source mean is put back
(so norm scales stay centred on their source values: ~1 for LayerNorm weights, ~0 for Gemma's
RMSNorm, which scales by ``1 + weight``: a norm has no fan-in, so every policy below puts its mean
back and none assumes where a norm's identity lies).

* ``"source_std"`` — the result is re-standardised to the source tensor's std.
  This is what FRONT's authors do, and it undoes the variance a low-pass resize loses.
* ``"fan_in"`` — like ``source_std``, then weights are scaled by ``sqrt(fan_in_source /
  fan_in_target)``: the std a fan-in initialiser would give at the target width, so the
  activations of a wider (narrower) model keep their scale. Vectors and embeddings have no
  fan-in and are treated as ``source_std``.
* ``"none"`` — the resampled signal as the method returns it, in source units.
* ``"preserve_function"`` — the resampled signal in source units, divided by
  ``fan_in_target / fan_in_source``: an input axis is summed over, so when it is resampled to
  ``k`` times as many elements each weight takes ``1/k`` of the share, and every layer's
  pre-activation keeps its value. With BoT's Haar wavelet at whole ratios this is exactly
  HyperCloning's construction (the grown model computes the source's function); with FRONT,
  padding or truncating orthonormal DCT coefficients preserves the inner products of the kept
  band, so it holds for the band the learngene keeps. Where the head size grows ``k``-fold,
  queries and keys (roles the architecture marks ``attention_logits``) are also divided by
  ``k^(1/4)``, so that the attention logits keep their value (elsewhere they scale by
  ``sqrt(new/old)``). An untied output head is a weight like any other (the hidden
  axis is its fan-in), so the logits keep their value; a head tied to the input embedding sees
  the width ratio (its logits grow ``k``-fold, as in HyperCloning) and the build warns.

* ``"kept_variance"`` — the resized signal in source units, times what undoes the variance the
  resize itself takes from uncorrelated units: ``1/sqrt`` of each changed axis's mean squared
  operator row (:meth:`~hf_learngene.methods.Resizer.variance_gain`). A unit kept whole keeps its
  weight exactly (its row is one 1; a share along an input axis is undone too), a Haar average of
  two units is scaled by √2. Unlike ``source_std`` it does not look at the result's std, which a
  selection changes for good reason: the residual units a model's norms scale most are read and
  written with small weights, and re-standardising the kept ones inflates them.

* ``"auto"`` (default for FRONT and BoT) — ``preserve_function`` for a tensor whose width (its
  element count without the layer axis) grows; otherwise the method's own narrowing policy
  (:attr:`~hf_learngene.methods.Resizer.narrowing_policy`): ``kept_variance`` for BoT, whose
  default shrink keeps whole units (``shrink="units"``), ``source_std`` for FRONT and for
  BoT's low-pass of every axis (``shrink="wavelet"``). Measured on MiniLM
  (``benchmarks/``): ``source_std`` gives the best models shrunk by a low-pass, ``kept_variance``
  the best shrunk by BoT's default, while for wider targets ``source_std`` loses the source's
  function and ``preserve_function`` keeps it.

At the source's own size every policy is the identity, so building at the source size
reproduces the source.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import LearngeneConfigError

RESCALING_POLICIES = ("auto", "source_std", "fan_in", "none", "preserve_function", "kept_variance")
UNSTANDARDISED = ("none", "preserve_function")  # policies that resize the signal in source units
_EPS = 1e-12


def check_policy(policy: str) -> None:
    if policy not in RESCALING_POLICIES:
        raise LearngeneConfigError(f"unknown rescaling policy '{policy}'; choose one of {', '.join(RESCALING_POLICIES)}")


def standardize(x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """``(x - mean) / std`` in float64 with the mean and std it used (std 1 for constant tensors)."""
    return standardize_(x.double())


def standardize_(x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """:func:`standardize` in place, in ``x``'s own dtype, with statistics summed in float64 one
    slice of the first axis at a time: a billion-value role needs no second copy."""
    slices = x.unbind(0) if x.dim() > 1 else (x,)
    count = x.numel()
    mean = sum(piece.sum(dtype=torch.float64).item() for piece in slices) / max(count, 1)
    squares = sum((piece.double() - mean).square().sum().item() for piece in slices)
    std = math.sqrt(squares / count) if count > 1 else 0.0
    if std < _EPS:
        std = 1.0
    return x.sub_(mean).div_(std), mean, std


def restore(
    z: torch.Tensor,
    mean: float,
    std: float,
    policy: str,
    source_fan_in: int | None = None,
    target_fan_in: int | None = None,
    resized: bool = True,
    widens: bool = False,
    variance_gain: float = 1.0,
    narrowing: str = "source_std",
) -> torch.Tensor:
    """Put a resized standardised signal back into weight units according to ``policy``.

    ``resized=False`` (the shape did not change) always returns ``z * std + mean``, which is
    exact at the source size. ``widens`` says whether the tensor's width grows (for ``"auto"``);
    ``variance_gain`` is the resize's (for ``"kept_variance"``), ``narrowing`` the method's own
    narrowing policy (for ``"auto"``).
    """
    scale, shift = affine(mean, std, policy, source_fan_in, target_fan_in, resized, widens,
                          z_std=lambda: z.std(unbiased=False).item() if z.numel() > 1 else 0.0,
                          narrowing=narrowing, variance_gain=lambda: variance_gain)
    return z * scale + shift


def resolved_policy(policy: str, widens: bool = False, narrowing: str = "source_std") -> str:
    """The policy ``auto`` stands for at this build: ``preserve_function`` when the tensor widens,
    the method's ``narrowing`` policy otherwise."""
    check_policy(policy)
    if policy == "auto":
        return "preserve_function" if widens else narrowing
    return policy


def needs_z_std(policy: str, resized: bool = True, widens: bool = False, narrowing: str = "source_std") -> bool:
    """Whether ``policy`` sets the result's std from the resized signal's own (so a build that
    resizes a role piece by piece must measure it over the whole role first)."""
    return resized and resolved_policy(policy, widens, narrowing) in ("source_std", "fan_in")


def affine(
    mean: float,
    std: float,
    policy: str,
    source_fan_in: int | None = None,
    target_fan_in: int | None = None,
    resized: bool = True,
    widens: bool = False,
    z_std: Callable[[], float] | None = None,
    logit_growth: float = 1.0,
    narrowing: str = "source_std",
    variance_gain: Callable[[], float] | None = None,
) -> tuple[float, float]:
    """``(scale, shift)`` such that ``z * scale + shift`` is :func:`restore`'s result.

    Every policy is affine in the resized signal, so a role can be restored one layer at a time;
    ``z_std`` gives the std of the whole resized role, asked for only when :func:`needs_z_std`.
    ``logit_growth`` (:func:`~hf_learngene.methods.base.logit_growth`) is what ``preserve_function``
    also divides a query or key role by. ``narrowing`` is what ``auto`` stands for when the tensor
    does not widen; ``variance_gain`` gives the resize's :meth:`~hf_learngene.methods.Resizer.variance_gain`,
    asked for only by ``kept_variance``.
    """
    policy = resolved_policy(policy, widens, narrowing)
    if policy == "kept_variance" and resized:
        gain = variance_gain() if variance_gain is not None else 1.0
        return (std / math.sqrt(gain), mean) if gain > _EPS else (std, mean)
    if policy == "preserve_function" and resized:
        ratio = (source_fan_in / target_fan_in if source_fan_in and target_fan_in else 1.0) / logit_growth
        return std * ratio, mean * ratio
    if policy in UNSTANDARDISED or not resized:
        return std, mean
    measured = z_std() if z_std is not None else 0.0
    target_std = std
    if policy == "fan_in" and source_fan_in and target_fan_in:
        target_std = std * math.sqrt(source_fan_in / target_fan_in)
    if measured < _EPS:  # nothing left to rescale (e.g. a constant vector)
        return std, mean
    return target_std / measured, mean
