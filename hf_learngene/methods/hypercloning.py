"""HyperCloning: grow width by integer factors so the grown model computes the same function.

Paper: "Scaling Smart: Accelerating Large Language Model Pre-Training with Small Model
Initialization" (Samragh et al., 2024). Every hidden vector of the grown model is the source's
repeated ``k`` times (``[h, h, …]``): weights are tiled along their output axes and tiled and
divided by ``k`` along their input axes, so each output is exactly the source's. Heads are
multiplied with the head size kept, MLP units likewise.

Optional Gaussian noise at a given signal-to-noise ratio (``snr_db``) breaks the symmetry between
the copies without changing the function, as in the paper: it is added only to weights whose
input axis is tiled, and it sums to zero over the ``k`` input copies of every source weight (the
paper adds ``+N`` and ``-N`` to paired copies; for ``k = 2`` this is the same), so every output
still sees exactly the source's sum. Each role (and each layer) gets its own noise, drawn from
``seed`` and the role's name. Vectors and embeddings get none.

A role the model multiplies by the square root of an axis (``SignalSpec.scaled_by``: Gemma's word
embeddings, × √hidden) is divided by the growth of that factor (√k), so the scaled embedding is the
source's repeated ``k`` times like every other hidden vector.

The head size grows by a whole factor too where heads are flat and the architecture marks the
attention's queries and keys (``SignalSpec.attention_logits``: BERT, DistilBERT, ViT, DiT): each
head's query, key and value dimensions are repeated ``k`` times and the output projection reads
each copy with ``1/k`` of the weight, as for any width; the ``k``-times longer dot product and the
model's ``1/√(k·d)`` scale then change the logits by ``√k``, so queries and keys are divided by
``k^(1/4)`` each and the logits keep their value (12 heads of 32 → 12 heads of 64 keeps the
function).

What it cannot do, it refuses: depth changes, other head-size changes (rotary or grouped heads,
whose rotation frequencies follow the head size; fused projections), shrinking, ratios that are not
whole numbers, and a grouped-query target whose query heads per key/value head differ from the
source's (the copies would read other key/value heads).

An untied output head is an ordinary weight with the hidden axis as its input, so the grown
model's logits are the source's. A head tied to the input embedding cannot be both: the built
model keeps the tie (as its config asks), its logits are ``k`` times the source's (``√k`` times for
Gemma's √hidden-scaled embeddings; the same ranking), and the build says so in a warning with how
to untie the source first.

Rescaling: none by default (the scale is part of the construction).
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import torch

from ..errors import LearngeneConfigError
from .base import Gather, Resizer, heads_by_kv_head, logit_growth, scale_growth, stored_head_groups
from .options import HyperCloningOptions

WIDTH_AXES = frozenset({"hidden", "heads", "kv_heads", "intermediate"})


class HyperCloningResizer(Resizer):
    name = "hypercloning"
    default_rescaling = "none"

    def __init__(self, snr_db: float | None = HyperCloningOptions.snr_db, seed: int = HyperCloningOptions.seed):
        if snr_db is not None and not isinstance(snr_db, (int, float)):
            raise LearngeneConfigError(f"snr_db must be a number (signal-to-noise ratio in dB) or None, got {snr_db!r}")
        self.snr_db = snr_db
        self.seed = seed

    def options(self) -> dict[str, Any]:
        return {"snr_db": self.snr_db, "seed": self.seed}

    def check(self, spec, source_shape, target_shape):
        for name, free, n, m in zip(spec.axes, spec.resizable, source_shape, target_shape):
            if not free or n == m:
                continue
            if name == "head_dim" and spec.attention_logits is not None and spec.head_groups is None:
                pass  # flat heads whose queries and keys the architecture marks: see the module docstring
            elif name not in WIDTH_AXES:
                raise LearngeneConfigError(
                    f"hypercloning grows width only; it cannot change the {name} axis ({n} → {m}). "
                    "Keep the source's depth and head size, or use front, bot or stack"
                )
            if m < n or m % n:
                raise LearngeneConfigError(
                    f"hypercloning grows by whole factors only: {name} {n} → {m} is {m / n:g}×; "
                    "choose a multiple of the source size, or use front or bot"
                )

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        # each target position repeats source position i mod n; an input axis shares the sum among the copies
        scale = stored_length / target_length if spec.inputs[axis] else 1.0
        return Gather(torch.arange(target_length) % stored_length, stored_length, scale)

    def stored_shape(self, spec, source_shape):
        return heads_by_kv_head(spec, source_shape)

    def encode(self, signal, spec, *, overwrite=False):
        """The source signal; a grouped ``heads`` axis is stored split by key/value head, so that a
        build can refuse a grouping the tiling would not keep."""
        return signal.reshape(self.stored_shape(spec, signal.shape))

    def decode(self, stored, spec, source_shape, target_shape):
        source_groups = stored_head_groups(stored, spec)
        if source_groups is not None and source_groups != spec.head_groups:
            heads = target_shape[spec.axes.index("heads")]
            hint = f", or ask for kv_heads={heads // source_groups}" if heads % source_groups == 0 else ""
            raise LearngeneConfigError(
                f"hypercloning keeps the function only with the source's {source_groups} query head(s) per "
                f"key/value head, but the target has {spec.head_groups}: the copied query heads would read other "
                f"key/value heads. Leave kv_heads out of the size (the grouping is then kept){hint}"
            )
        out = super().decode(stored.reshape(tuple(source_shape)), spec, source_shape, target_shape)
        # the model scales this role by √(an axis) that grew, or it is a query or key of a grown head size
        growth = scale_growth(spec, source_shape, target_shape) * logit_growth(spec, source_shape, target_shape)
        if growth != 1.0:
            out = out / growth
        if self.snr_db is None:
            return out
        shapes = zip(spec.inputs, source_shape, target_shape)
        copied = [axis for axis, (is_input, n, m) in enumerate(shapes) if is_input and m != n]
        if not copied:  # noise anywhere else would reach the next layer unbalanced
            return out
        return out + self.balanced_noise(out, spec.role, copied, source_shape)

    def balanced_noise(
        self, weight: torch.Tensor, role: str, copied: list[int], source_shape: Sequence[int]
    ) -> torch.Tensor:
        """Gaussian noise at ``snr_db`` below ``weight``'s power that sums to zero over the copies of
        every input axis in ``copied`` (tiled from ``source_shape``)."""
        generator = torch.Generator().manual_seed(role_seed(self.seed, role))
        noise = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
        split, copy_dims = [], []  # a tiled axis of length k·n is k copies of n: [x, x, …]
        for axis, length in enumerate(weight.shape):
            if axis in copied:
                copy_dims.append(len(split))
                split += [length // source_shape[axis], source_shape[axis]]
            else:
                split.append(length)
        noise = noise.reshape(split)
        noise = (noise - noise.mean(dim=copy_dims, keepdim=True)).reshape(weight.shape)
        power = weight.double().pow(2).mean() * 10 ** (-self.snr_db / 10)
        return (noise * (power / noise.pow(2).mean().clamp_min(1e-30)).sqrt()).to(weight.dtype)


def role_seed(seed: int, role: str) -> int:
    """A generator seed of its own for every role (``hash`` of a string changes between runs)."""
    digest = hashlib.sha256(f"{seed}:{role}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
