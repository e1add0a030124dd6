"""Extraction: a learngene from a pretrained model, role by role, each role stacked, standardised,
encoded by the method and recorded, in memory or streamed to a folder as it is made."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn
from transformers.utils import logging

from ..architectures import architecture_for, config_as_dict, expanded_shape, fan_in, model_type_of
from ..configs import LearngeneConfig, RoleRecord
from ..errors import LearngeneLoadError
from ..methods import get_method
from ..methods.rescaling import UNSTANDARDISED, check_policy, standardize_
from .folder import _write_learngene
from .memory import _return_freed_memory
from .roles import _stack_role, _storage_key, group_by_role, signal_spec
from .source import _is_model, _read_source, canonical_state

if TYPE_CHECKING:
    from .container import Learngene


class LearngeneExtractionMixin:
    """:meth:`extract`, for :class:`~hf_learngene.Learngene` (made with ``cls(config)``, or loaded back
    with ``cls.from_pretrained`` when streamed to a folder)."""

    @classmethod
    def extract(
        cls,
        source: nn.Module | str | os.PathLike,
        method: str = "front",
        *,
        rescaling: str | None = None,
        processor: Any = None,
        revision: str | None = None,
        show_progress: bool = True,
        save_directory: str | os.PathLike | None = None,
        max_shard_size: int | str | None = None,
        storage_dtype: torch.dtype | str | None = None,
        **method_options: Any,
    ) -> Learngene:
        """Extract a learngene from a pretrained model (a model object, a folder or a Hub id).

        A folder or Hub id with safetensors weights is read lazily, one role at a time, without
        making the model: host memory stays near the largest stacked role. With ``save_directory``
        each role is also written as soon as it is encoded (never all of them in memory) and the
        learngene returned reads its tensors from there.

        Args:
            source: the pretrained model. A folder or Hub id is loaded with the class named in its
                config, so task heads saved with it (an MLM head, an untied LM head) are kept.
            method: ``"front"`` (DCT), ``"bot"`` (wavelets), or a peer method for comparison
                (``"weight_selection"``, ``"hypercloning"``, ``"stack"``, ``"random"``).
            rescaling: how built tensors are scaled: ``"source_std"``, ``"fan_in"``, ``"none"``,
                ``"preserve_function"`` or ``"kept_variance"`` (see :mod:`hf_learngene.methods.rescaling`);
                by default the method's own (``auto`` for FRONT and BoT, ``none`` for the peers,
                whose published recipes set the scale themselves).
            processor: a tokenizer or image processor to ship with the learngene (loaded from
                ``source`` automatically when it is a folder or Hub id).
            save_directory, max_shard_size, storage_dtype: stream the learngene to this folder, as
                :meth:`save_pretrained` would write it.
            **method_options: the method's options, e.g. ``keep=0.5`` (FRONT), ``wavelet="db2"`` (BoT).
        """
        resizer = get_method(method, **method_options)
        rescaling = rescaling or resizer.default_rescaling
        check_policy(rescaling)
        if _is_model(source):
            source_name = str(getattr(source.config, "_name_or_path", None) or "") or None  # diffusers keeps a Path
            config, source_config, state = source.config, config_as_dict(source), canonical_state(source)
        else:
            source_name = str(source)
            config, source_config, state, loaded_processor = _read_source(source, revision)
            processor = processor if processor is not None else loaded_processor
        arch = architecture_for(model_type_of(source_config))
        sizes = arch.axis_sizes(config)
        empty = [name for name, tensor in state.items() if getattr(tensor, "is_meta", False)]
        if empty:
            raise LearngeneLoadError(
                f"the source model's weights are not materialised: {len(empty)} tensor(s) ({', '.join(empty[:3])}"
                f"{' …' if len(empty) > 3 else ''}) are on the meta device with no offloaded copy to read, as in a "
                "model made under init_empty_weights(). Pass the model's folder or Hub id instead "
                "(Learngene.extract loads the weights itself), or load it with from_pretrained first"
            )
        groups = group_by_role(arch, state, "source model", config)
        if not resizer.provides_weights:  # the random-init baseline keeps nothing of the source
            groups = {}

        def encoded_roles() -> Iterator[tuple[str, torch.Tensor]]:
            for role, (param, members) in logging.tqdm(
                groups.items(), desc=f"extracting {method} learngene", disable=not show_progress
            ):
                signal = _stack_role(param, members, sizes)
                # "none" works on raw weights, so methods that scale inputs (HyperCloning) stay exact
                mean, std = 0.0, 1.0
                if rescaling not in UNSTANDARDISED:
                    signal, mean, std = standardize_(signal)
                stored = resizer.encode(signal, signal_spec(param), overwrite=True).float()
                del signal
                records[param.role] = RoleRecord(
                    axes=tuple(param.axes()),
                    source_shape=tuple(expanded_shape(param, sizes)),
                    stored_shape=tuple(stored.shape),
                    mean=mean,
                    std=std,
                    fan_in=fan_in(param, sizes),
                )
                yield param.role, stored
                del stored  # written by now: not held while the next role is stacked
                _return_freed_memory()

        records: dict[str, RoleRecord] = {}
        make_config = lambda: LearngeneConfig(
            family=arch.family,
            source_config=source_config,
            method=method,
            method_options=resizer.options(),
            rescaling=rescaling,
            roles=records,
            source_name_or_path=source_name,
        )
        if save_directory is not None:  # each role is written as it is made: never all of them in memory
            _write_learngene(save_directory, make_config, encoded_roles(), processor, max_shard_size, storage_dtype)
            return cls.from_pretrained(save_directory, low_cpu_mem_usage=True)
        stored = dict(encoded_roles())
        with torch.device("meta"):  # the encoded tensors become the parameters: nothing is allocated twice
            learngene = cls(make_config())
        for role in list(stored):
            learngene.coefficients[_storage_key(role)] = nn.Parameter(stored.pop(role))
        learngene.processor = processor
        return learngene
