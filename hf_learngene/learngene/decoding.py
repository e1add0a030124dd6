"""Decoding: one stored role back into weights at a target size, layer by layer, restored to the
source's scale by the rescaling policy."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Iterator

import torch

from ..architectures import Param, expanded_shape, fan_in
from ..methods import get_method
from ..methods.base import logit_growth
from ..methods.rescaling import affine, resolved_policy
from .roles import signal_spec


class LearngeneDecodingMixin:
    """:meth:`decode_role_layers`, for :class:`~hf_learngene.Learngene` (it reads the learngene's
    ``config``, ``architecture``, ``source_config`` and stored tensors)."""

    def decode_role_layers(
        self,
        param: Param,
        target_sizes: dict[str, int],
        stored_role: str | None = None,
        device: torch.device | str | None = None,
        reuse_buffers: bool = False,
    ) -> Iterator[torch.Tensor]:
        """One role's signal at the target sizes, in weight units, one target layer at a time
        (one slice for a role without layers), computed in float32 on ``device``.
        ``reuse_buffers=True`` computes every layer in the same memory (see
        :meth:`~hf_learngene.methods.Resizer.decode_layers`): copy each one out before the next.

        Every rescaling policy is affine in the resized signal, so each layer is restored as it
        is decoded; a policy that needs the std of the whole resized role gets it from a first
        pass that keeps nothing. ``stored_role`` decodes another stored role as ``param``: an
        untied output head built from a source whose head was tied reads the word embeddings,
        resized as a head (with its fan-in).
        """
        role = stored_role or param.role
        record = self.config.role(role)
        target_shape = expanded_shape(param, target_sizes)
        source_shape = record.source_shape
        resizer = get_method(self.config.method, **self.config.method_options)
        stored = self._stored_tensor(role).to(device=device, dtype=torch.float32)
        stored = self._in_current_layout(stored, role, resizer, source_shape)
        spec = signal_spec(param)
        if resizer.ranks_hidden_units and "hidden" in spec.axes:
            spec = dataclasses.replace(spec, hidden_ranking=self.hidden_ranking)
        resized = target_shape != source_shape or record.stored_shape != source_shape
        width = lambda shape: math.prod(n for axis, n in zip(spec.axes, shape) if axis != "layers")
        widens = width(target_shape) > width(source_shape)
        source_fan_in = record.fan_in
        if stored_role is not None or (source_fan_in is None and param.fan_in is not None):
            # a head read from the embeddings, or a learngene saved before its head had a fan-in
            source_fan_in = fan_in(param, self.architecture.axis_sizes(self.source_config))
        decode = lambda reuse=False: resizer.decode_layers(stored, spec, source_shape, target_shape, reuse)
        scale, shift = affine(
            record.mean, record.std, self.config.rescaling, source_fan_in, fan_in(param, target_sizes),
            resized=resized, widens=widens, z_std=lambda: _std_over(decode(reuse_buffers)),
            logit_growth=logit_growth(spec, source_shape, target_shape), narrowing=resizer.narrowing_policy,
            variance_gain=lambda: resizer.variance_gain(spec, stored.shape, source_shape, target_shape),
        )
        response = None  # the mean decoded as the weights are, where the operator does not keep constants
        if resized and resolved_policy(self.config.rescaling, widens, resizer.narrowing_policy) == "preserve_function":
            response = resizer.constant_response(spec, stored.shape, source_shape, target_shape)
        if response is not None:
            response = (response * shift).to(device=stored.device, dtype=torch.float32)
        for z in decode(reuse_buffers):
            if z.untyped_storage().data_ptr() == stored.untyped_storage().data_ptr():
                z = z.clone()  # an unchanged size may decode to the stored tensor itself: never change it in place
            yield z.mul_(scale).add_(shift) if response is None else z.mul_(scale).add_(response)

    @functools.cached_property
    def hidden_ranking(self) -> tuple[int, ...] | None:
        """The stored hidden (residual) units, from the largest norm gain to the smallest.

        A unit's gain is ``sqrt(weight² + bias²)`` of every norm over the hidden axis (each layer's,
        the embeddings' and the final one), summed: how strongly the model scales that unit where it
        reads the residual stream. A trained model's residual units are far from alike (MiniLM's
        largest is a few times its median), and a narrower model that keeps the units with the
        largest gains keeps what its source amplifies. Read from the stored norms, so the ranking
        is the source's (or that of the stored bands, for a learngene that stores coarser ones).
        ``None`` where no norm over the hidden axis is stored, or where every unit's norms are alike
        (a model whose norms were never trained): its narrower models keep evenly spaced units.
        """
        offset = self.architecture.norm_gain_offset
        total, values = None, []
        for role, param in self._source_roles.items():
            if param.norm != "gain" or role not in self.config.roles:
                continue
            if [axis for axis in param.axes() if axis != "layers"] != ["hidden"]:
                continue
            gain = self._stored_values(role) + offset
            shift_role = role[: -len("weight")] + "bias" if role.endswith("weight") else None
            shift = self._stored_values(shift_role) if shift_role in self.config.roles else torch.zeros_like(gain)
            magnitude = (gain.square() + shift.square()).sqrt().reshape(-1, gain.shape[-1]).sum(0)
            total = magnitude if total is None else total + magnitude
            values += [gain.reshape(-1, gain.shape[-1]), shift.reshape(-1, shift.shape[-1])]
        if total is None:
            return None
        ranking = torch.argsort(total, descending=True, stable=True)
        # a unit whose norms are another's exactly is a copy (a grown source): copies rank after every
        # distinct unit, so a narrower model keeps distinct units, one of each before any second copy
        distinct, group = torch.unique(torch.cat(values).T, dim=0, return_inverse=True)
        if len(distinct) == 1:  # every unit alike (norms never trained): nothing to rank by
            return None
        copies_before, count = [], {}
        for unit_group in group[ranking].tolist():
            copies_before.append(count.get(unit_group, 0))
            count[unit_group] = copies_before[-1] + 1
        return tuple(ranking[torch.argsort(torch.tensor(copies_before), stable=True)].tolist())

    def _stored_values(self, role: str) -> torch.Tensor:
        """A stored role in weight units (its standardisation undone), in float64."""
        record = self.config.role(role)
        return self._stored_tensor(role).double() * record.std + record.mean

    @functools.cached_property
    def _source_roles(self) -> dict[str, Param]:
        """The source's roles by name (built once: a config is rebuilt from its dict on every access)."""
        return {p.role: p for p in self.architecture.roles(self.source_config)}

    def _in_current_layout(self, stored: torch.Tensor, role: str, resizer, source_shape) -> torch.Tensor:
        """A stored tensor in the layout the method stores today: a learngene saved before grouped
        heads were stored split by key/value head (weight selection, HyperCloning) is reshaped with
        the source's own grouping, so the build never guesses it from the target's."""
        source_roles = self._source_roles
        if role not in source_roles:
            return stored
        expected = tuple(resizer.stored_shape(signal_spec(source_roles[role]), source_shape))
        if tuple(stored.shape) != expected and stored.numel() == math.prod(expected):
            return stored.reshape(expected)
        return stored

    def _untied_head_source(self, param: Param) -> str | None:
        """The stored role an output-head tensor is built from when the source's head was tied and
        the target's is not (``tie_word_embeddings=False`` at build): the word embeddings for the
        head's weight (resized as a head, with its fan-in), the shared bias for BERT's decoder bias.
        ``None`` otherwise, e.g. for a source whose head was untied but not kept (a bare ``LlamaModel``)."""
        shared = self.architecture.tied_copies.get(param.role)
        if param.role in self.config.roles or shared not in self.config.roles:
            return None
        if not getattr(self.source_config, "tie_word_embeddings", False):
            return None
        return shared


def _std_over(slices: Iterator[torch.Tensor]) -> float:
    """The population std of a tensor given slice by slice (float64 sums, one slice held at a time)."""
    count, total, squares = 0, 0.0, 0.0
    for piece in slices:
        piece = piece.double()
        count += piece.numel()
        total += piece.sum().item()
        squares += piece.square().sum().item()
    if count < 2:
        return 0.0
    mean = total / count
    return math.sqrt(max(squares / count - mean * mean, 0.0))
