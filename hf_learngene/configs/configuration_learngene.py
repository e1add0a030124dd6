"""The configuration of a :class:`~hf_learngene.Learngene`."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class LearngeneConfig(PretrainedConfig):
    """Everything needed to rebuild models from a learngene's stored tensors.

    Args:
        family: the architecture table the learngene was extracted with (``"bert"``, ``"gpt2"``, ...).
        source_config: the source model's config as a dict; targets start from it.
        method: the resizing method (``"front"`` or ``"bot"``).
        method_options: the method's options (e.g. ``{"keep": 0.5}`` or ``{"wavelet": "haar"}``).
        rescaling: the rescaling policy applied after resizing (see :mod:`hf_learngene.methods.rescaling`).
        roles: per stored role — its ``axes``, ``source_shape`` (expanded), ``stored_shape``,
            the source ``mean`` and ``std``, and ``fan_in``.
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
        roles: dict[str, dict[str, Any]] | None = None,
        source_name_or_path: str | None = None,
        checksum: str | None = None,
        storage_dtype: str = "float32",
        **kwargs: Any,
    ):
        self.family = family
        self.source_config = source_config or {}
        self.method = method
        self.method_options = method_options or {}
        self.rescaling = rescaling
        self.roles = roles or {}
        self.source_name_or_path = source_name_or_path
        self.checksum = checksum
        self.storage_dtype = storage_dtype
        super().__init__(**kwargs)
