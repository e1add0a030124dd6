"""The configuration of a :class:`~hf_learngene.Learngene`, and the record it keeps of each stored role."""

from __future__ import annotations

import dataclasses
from typing import Any

from transformers import PretrainedConfig


@dataclasses.dataclass(frozen=True)
class RoleRecord:
    """What a learngene keeps about one stored role beside its tensor.

    Args:
        axes: the axes of the role's stacked, expanded signal (``"layers"`` first for a layered role).
        source_shape: the signal's shape in the source model (its axes' sizes).
        stored_shape: the shape of the stored tensor.
        mean, std: the source signal's mean and std, removed before encoding (``0.0`` and ``1.0`` when
            the rescaling policy works on raw weights).
        fan_in: the source tensor's fan-in; ``None`` for a role without one (and for the output head
            of a learngene saved before heads had a fan-in).
    """

    axes: tuple[str, ...]
    source_shape: tuple[int, ...]
    stored_shape: tuple[int, ...]
    mean: float
    std: float
    fan_in: int | None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RoleRecord":
        """The record of one entry of ``config.json``'s ``roles`` (learngenes saved before the axes
        were recorded have none; nothing reads them to build)."""
        return cls(
            axes=tuple(values.get("axes", ())),
            source_shape=tuple(values["source_shape"]),
            stored_shape=tuple(values["stored_shape"]),
            mean=values["mean"],
            std=values["std"],
            fan_in=values["fan_in"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as ``config.json`` holds it."""
        return {
            "axes": list(self.axes),
            "source_shape": list(self.source_shape),
            "stored_shape": list(self.stored_shape),
            "mean": self.mean,
            "std": self.std,
            "fan_in": self.fan_in,
        }


# options a method gained after learngenes were saved without them, with the value those learngenes
# were built with: a saved learngene decodes as it did, whatever the option's default is now
OPTIONS_BEFORE_THEY_EXISTED = {"bot": {"non_dyadic": "linear", "shrink": "wavelet"}}


class LearngeneConfig(PretrainedConfig):
    """Everything needed to rebuild models from a learngene's stored tensors.

    Args:
        family: the architecture table the learngene was extracted with (``"bert"``, ``"gpt2"``, ...).
        source_config: the source model's config as a dict; targets start from it.
        method: the resizing method (``"front"`` or ``"bot"``).
        method_options: the method's options (e.g. ``{"keep": 0.5}`` or ``{"wavelet": "haar"}``).
        rescaling: the rescaling policy applied after resizing (see :mod:`hf_learngene.methods.rescaling`).
        roles: per stored role, its :class:`RoleRecord` (or the record's dict, as ``config.json`` holds
            it). ``config.roles`` keeps the dicts; :meth:`role` reads one as a record.
        source_name_or_path: where the source model came from, for model cards.
        checksum: sha256 of ``learngene.safetensors``, or of the shard index (which holds one
            sha256 per shard), checked on load.
        storage_dtype: the dtype the tensors are stored in (``"float32"``, or ``"bfloat16"`` for
            half the bytes); they are always decoded in float32.
    """

    model_type = "learngene"

    def __init__(
        self,
        family: str | None = None,
        source_config: dict[str, Any] | None = None,
        method: str = "front",
        method_options: dict[str, Any] | None = None,
        rescaling: str = "auto",
        roles: dict[str, RoleRecord | dict[str, Any]] | None = None,
        source_name_or_path: str | None = None,
        checksum: str | None = None,
        storage_dtype: str = "float32",
        **kwargs: Any,
    ):
        self.family = family
        self.source_config = source_config or {}
        self.method = method
        self.method_options = {**OPTIONS_BEFORE_THEY_EXISTED.get(method, {}), **(method_options or {})}
        self.rescaling = rescaling
        self.roles = {
            role: record.to_dict() if isinstance(record, RoleRecord) else record
            for role, record in (roles or {}).items()
        }
        self.source_name_or_path = source_name_or_path
        self.checksum = checksum
        self.storage_dtype = storage_dtype
        super().__init__(**kwargs)

    def role(self, role: str) -> RoleRecord:
        """The record of one stored role."""
        return RoleRecord.from_dict(self.roles[role])

    def role_records(self) -> dict[str, RoleRecord]:
        """The records of every stored role, in storage order."""
        return {role: RoleRecord.from_dict(values) for role, values in self.roles.items()}
