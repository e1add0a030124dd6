"""The factorized linear layer ``W^(l) = U⋆ · diag(σ^(l) ⊙ g) · V⋆ᵀ`` shared by FINE and knowledge diversion.

``SharedFactors`` holds one matrix type's ``U⋆`` (out × r) and ``V⋆`` (in × r), shared by every
block; each block's ``FactorizedLinear`` holds only its singular-value vector ``σ^(l)`` (r) and
its bias. ``g`` is an optional per-unit gate (r values, default all ones): knowledge diversion
switches rank-1 units on and off per condition through it without touching the factors.

A layer may use a block of ``U⋆``'s rows (``rows``), so that q, k and v of one attention share
the single "attention qkv" factor pair as FINE specifies, while diffusers keeps three linears.
The shared factors are registered once, on the model that owns them; layers keep a plain
reference so that state dicts hold every factor once.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LearngeneConfigError


class SharedFactors(nn.Module):
    """``U⋆`` and ``V⋆`` of one matrix type, with orthonormal columns at initialisation."""

    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        if not 1 <= rank <= min(out_features, in_features):
            raise LearngeneConfigError(
                f"rank must be between 1 and min(out, in) = {min(out_features, in_features)}, got {rank}")
        self.U = nn.Parameter(torch.empty(out_features, rank))
        self.V = nn.Parameter(torch.empty(in_features, rank))
        self.reset_parameters()

    @property
    def rank(self) -> int:
        return self.U.shape[1]

    def reset_parameters(self) -> None:
        nn.init.orthogonal_(self.U)
        nn.init.orthogonal_(self.V)

    def extra_repr(self) -> str:
        return f"out={self.U.shape[0]}, in={self.V.shape[0]}, rank={self.rank}"


class FactorizedLinear(nn.Module):
    """A linear layer whose weight is ``U⋆[rows] · diag(σ ⊙ gate) · V⋆ᵀ`` plus an ordinary bias."""

    def __init__(self, factors: SharedFactors, rows: tuple[int, int] | None = None, bias: bool = True,
                 sigma: torch.Tensor | float = 1.0):
        super().__init__()
        self._factors = (factors,)  # a reference, not a submodule: the owner registers the factors once
        start, stop = rows if rows is not None else (0, factors.U.shape[0])
        self.rows = (start, stop)
        self.in_features, self.out_features = factors.V.shape[0], stop - start
        self.sigma = nn.Parameter(torch.empty(factors.rank))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None
        self.gate: torch.Tensor | None = None
        if not self.sigma.is_meta:
            with torch.no_grad():
                self.sigma.copy_(torch.as_tensor(sigma, dtype=self.sigma.dtype).expand_as(self.sigma))

    @property
    def factors(self) -> SharedFactors:
        return self._factors[0]

    def set_gate(self, gate: torch.Tensor | None) -> None:
        """Scale each rank-1 unit by ``gate`` (shape (r,) or broadcastable), or ``None`` for all ones."""
        if gate is not None and gate.shape[-1] != self.factors.rank:
            raise ValueError(f"the gate needs {self.factors.rank} values (one per unit), got shape {tuple(gate.shape)}")
        self.gate = gate

    def scales(self) -> torch.Tensor:
        return self.sigma if self.gate is None else self.sigma * self.gate

    def u(self) -> torch.Tensor:
        return self.factors.U[self.rows[0] : self.rows[1]]

    def weight(self) -> torch.Tensor:
        """The dense (out × in) weight this layer applies."""
        return (self.u() * self.scales()) @ self.factors.V.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.linear(x, self.factors.V.T.to(x.dtype)) * self.scales().to(x.dtype)
        return F.linear(hidden, self.u().to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.factors.rank}, "
                f"rows={self.rows}, bias={self.bias is not None}")


def matching_sigma(dense: torch.Tensor, rank: int) -> float:
    """The constant σ that gives a factorized weight the Frobenius norm of ``dense`` (columns orthonormal)."""
    if dense.is_meta:  # being built to receive loaded weights: any value does
        return 1.0
    return dense.detach().float().norm().item() / math.sqrt(rank)
