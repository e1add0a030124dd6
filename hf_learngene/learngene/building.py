"""Building: an ordinary transformers or diffusers model of a requested size from a learngene,
made on the meta device and materialised tensor by tensor, in memory or streamed to a folder, and
what such a build takes."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate import init_empty_weights
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.initialization import no_init_weights
from transformers.utils import logging

from ..architectures import (
    Param,
    expanded_shape,
    full_tensor_shape,
    is_resizable,
    resolve_target_config,
    segment_index,
    tensor_shape,
)
from ..architectures.sizing import SizeRequest
from ..errors import FamilyMismatchError, LearngeneConfigError, UnsupportedArchitectureError
from ..learngene_files import MODEL_FILES, ShardWriter
from ..methods import get_method
from ..methods.base import BLOCK_BYTES, MIX_BYTES, Resizer, operator_matrix
from ..saving import write_folder_atomically
from .memory import _return_freed_memory
from .provenance import _record_provenance, _save_built_model_card
from .roles import group_by_role, signal_spec
from .source import _canonical_names, canonical_state

logger = logging.get_logger(__name__)


class LearngeneBuildingMixin:
    """:meth:`build`, :meth:`build_pretrained`, :meth:`build_estimate` and :meth:`target_config`,
    for :class:`~hf_learngene.Learngene` (its :meth:`decode_role_layers` gives each role's tensors)."""

    def target_config(self, size: SizeRequest = None, **config_overrides: Any) -> Any:
        """The config :meth:`build` would use for ``size`` (a preset, a dict or a config)."""
        return resolve_target_config(self.architecture, self.source_config, size, source_blocks=self.source_blocks,
                                     **config_overrides)

    def source_blocks(self, layers: int) -> list[int] | None:
        """For a target of ``layers`` blocks, the source block each one is made from, where this
        learngene's method takes whole blocks (weight selection, stacking, BoT keeping units);
        ``None`` where target blocks mix several source blocks (FRONT, BoT's wavelet) or the
        learngene stores no per-layer role."""
        source_layers = self.architecture.axis_sizes(self.source_config)["layers"]
        resizer = get_method(self.config.method, **self.config.method_options)
        param = next((p for p in self.architecture.roles(self.source_config)
                      if p.layered and p.first_layer == 0 and p.role in self.config.roles), None)
        if param is None or not resizer.stores_blocks:
            return None
        record, spec = self.config.role(param.role), signal_spec(param)
        if record.stored_shape[0] != source_layers:
            return None  # the stored layers are not the source's blocks
        try:  # a depth the method cannot build (weight selection growing) is refused by the build itself
            resizer.check(spec, record.source_shape, (layers, *record.source_shape[1:]))
        except LearngeneConfigError:
            return None
        operator = resizer.axis_operator(spec, 0, source_layers, source_layers, layers)
        if operator is None:
            return list(range(layers)) if layers == source_layers else None
        taken = operator_matrix(operator, source_layers).ne(0)
        if not bool((taken.sum(1) == 1).all()):
            return None
        return taken.to(torch.int8).argmax(1).tolist()

    @torch.no_grad()
    def build(
        self,
        size: SizeRequest = None,
        auto_class: type | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        show_progress: bool = True,
        **config_overrides: Any,
    ) -> nn.Module:
        """Build an ordinary transformers (or diffusers) model of the requested size from this learngene.

        The model is made on the meta device and each tensor is materialised once, already
        resized, in ``dtype`` on ``device`` (the resize runs there too), one layer at a time: the
        peak memory is the model's own bytes plus one layer of one role. Tensors the learngene
        does not hold (a new task head) get the model's normal initialisation.

        Args:
            size: a preset name of the family (see ``architecture.presets``), a dict of sizes
                (``{"layers": 4, "hidden": 256, "heads": 4}`` or config field names), a full
                config of the same family, or ``None`` for the source's own size.
            auto_class: the transformers auto class that picks the model class (default ``AutoModel``),
                or a model class of the family itself (e.g. ``BertForMaskedLM``). For a diffusers
                family, the source's model class (or a subclass of it).
            dtype: the dtype of the built weights (default ``torch.float32``), e.g. ``torch.bfloat16``.
            device: where the weights are made (default the CPU), e.g. ``"cuda"``.
            **config_overrides: further config fields, e.g. ``num_labels=2``.
        """
        dtype, device = _check_dtype(dtype), torch.device(device if device is not None else "cpu")
        model, target_sizes, groups = self._plan(size, auto_class, config_overrides)
        provided = set()
        for name, tensor in self._materialised(model, target_sizes, groups, dtype, device, show_progress):
            _set_tensor(model, name, tensor)
            provided.add(name)
        self._initialise_the_rest(model, provided, dtype, device)
        _set_config_dtype(model, dtype)
        model.eval()
        return model

    @torch.no_grad()
    def build_pretrained(
        self,
        save_directory: str | os.PathLike,
        size: SizeRequest = None,
        auto_class: type | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        max_shard_size: int | str = "2GB",
        show_progress: bool = True,
        **config_overrides: Any,
    ) -> Path:
        """Build a model straight to a folder that ``from_pretrained`` loads, never holding it whole.

        The tensors of :meth:`build` (bit for bit) are streamed role by role, layer by layer, into
        sharded safetensors with transformers' (or diffusers') index, beside ``config.json``, the
        learngene's tokenizer or image processor and a model card; the folder is written under a
        temporary name and renamed when complete. Each tensor goes to disk as soon as it is made, so
        host memory stays near one tensor plus one layer of one role being decoded: a 7B model
        builds on a machine with far less free memory than its size. Arguments are those of
        :meth:`build`, and ``max_shard_size`` sets the files' size; returns the folder.
        """
        dtype, device = _check_dtype(dtype), torch.device(device if device is not None else "cpu")
        model, target_sizes, groups = self._plan(size, auto_class, config_overrides)
        library = self.architecture.library
        full_names = _canonical_names(model)
        provided = {full_names[name] for _, members, _ in groups.values() for name, _ in members.values()}
        made_here = self._initialise_the_rest(model, provided, dtype, torch.device("cpu"))
        _set_config_dtype(model, dtype)
        state = model.state_dict()
        logger.info("building %s with %s parameters (%s bytes) into %s", type(model).__name__,
                    f"{_parameter_count(model):,}", f"{_parameter_count(model) * dtype.itemsize:,}", save_directory)

        def write(staging: Path) -> None:
            with ShardWriter(staging, MODEL_FILES[library], max_shard_size) as writer:
                for name, tensor in self._materialised(model, target_sizes, groups, dtype, device, show_progress):
                    writer.add(name, tensor)
                    del tensor  # written: not held while the next one is decoded
                for name in made_here:
                    writer.add(name, state[name])
            _save_model_config(model, staging)
            if self.processor is not None:
                self.processor.save_pretrained(staging)
            if library == "transformers":
                _save_built_model_card(model, staging, Path(save_directory).resolve().name)

        return write_folder_atomically(save_directory, write)

    def build_estimate(
        self,
        size: SizeRequest = None,
        auto_class: type | None = None,
        *,
        dtype: torch.dtype | str | None = None,
        **config_overrides: Any,
    ) -> dict[str, Any]:
        """What building ``size`` takes, from the target made on the meta device (nothing allocated).

        Returns the target's class, parameter count and bytes in ``dtype``, and the peak host
        memory a build adds: :meth:`build` holds the model plus one layer of one role being
        decoded (a whole role for the peers that override ``decode``: stack, HyperCloning, weight
        selection) and that role's stored tensor; :meth:`build_pretrained` holds one whole tensor instead of
        the model. Bytes of a learngene loaded without ``low_cpu_mem_usage`` come on top.
        """
        dtype = _check_dtype(dtype)
        model, target_sizes, groups = self._plan(size, auto_class, config_overrides)
        parameters = _parameter_count(model)
        largest_tensor = max((p.numel() for p in model.parameters()), default=0) * dtype.itemsize
        resizer = get_method(self.config.method, **self.config.method_options)
        layer_by_layer = type(resizer).decode is Resizer.decode  # others decode a whole role at once
        working = 0
        for role, (param, members, stored_role) in groups.items():
            target_shape = expanded_shape(param, target_sizes)
            held = math.prod(target_shape[1:] if param.layered and layer_by_layer else target_shape)
            # float32: the stored role, the stored layers mixed per pass, and the layer (or role)
            # decoded with one buffer per resized axis (reused from layer to layer)
            stored_shape = self.config.role(stored_role or role).stored_shape
            stored = math.prod(stored_shape)
            mixed = max(MIX_BYTES // 4, stored // stored_shape[0]) if param.layered else 0
            working = max(working, 4 * (stored + mixed + 4 * held))
        working += 8 * BLOCK_BYTES  # one block's FFT temporaries
        return {
            "model_class": type(model).__name__,
            "sizes": {k: v for k, v in target_sizes.items() if is_resizable(k)},
            "parameters": parameters,
            "dtype": str(dtype).removeprefix("torch."),
            "bytes": parameters * dtype.itemsize,
            "peak_build_bytes": parameters * dtype.itemsize + working,
            "peak_build_pretrained_bytes": largest_tensor + working,
        }

    def _plan(self, size: SizeRequest, auto_class: type | None, config_overrides: dict) -> tuple[nn.Module, dict, dict]:
        """The target model on the meta device, its axis sizes, and the roles the learngene provides
        (see :meth:`_decodable`)."""
        arch = self.architecture
        target = self.target_config(size, **config_overrides)
        if arch.library == "diffusers":
            model = self._instantiate_diffusers(target, auto_class)
        else:
            model = self._instantiate_transformers(target, auto_class or AutoModel)
        target_sizes = arch.axis_sizes(target)
        groups = group_by_role(arch, canonical_state(model, keep_vars=True), f"target {type(model).__name__}", target)
        _record_provenance(self, model, target_sizes, size if isinstance(size, str) else None)
        return model, target_sizes, self._decodable(model, groups)

    def _materialised(
        self, model: nn.Module, target_sizes: dict[str, int], groups: dict, dtype: torch.dtype,
        device: torch.device, show_progress: bool,
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """``(full name, tensor)`` for every tensor the learngene provides, each made once in
        ``dtype`` on ``device`` as soon as all its parts are decoded, role by role, layer by layer."""
        arch = self.architecture
        canonical_to_full = _canonical_names(model)
        parts_left: dict[str, int] = {}
        for _, members, _ in groups.values():
            for name, _ in members.values():
                parts_left[name] = parts_left.get(name, 0) + 1
        pending: dict[str, torch.Tensor] = {}
        for role, (param, members, stored_role) in logging.tqdm(
            self._decoding_order(groups, target_sizes), desc="building from learngene", disable=not show_progress
        ):
            part_shape, whole_shape = tensor_shape(param, target_sizes), full_tensor_shape(param, target_sizes)
            part = segment_index(param, target_sizes)
            for layer, (name, tensor) in members.items():
                if tuple(tensor.shape) != whole_shape:
                    raise LearngeneConfigError(
                        f"{name} of {type(model).__name__} has shape {tuple(tensor.shape)}, but the {arch.family} table "
                        f"derives {whole_shape} from the target config; this size cannot be built "
                        "(e.g. a Llama head size must be even for its rotary halves)"
                    )
            # every target layer is decoded; those before the role's first_layer have no tensor to write
            decoded_layers = list(range(target_sizes["layers"])) if param.layered else [None]
            if param.layered and sorted(members) != decoded_layers[param.first_layer:]:
                raise UnsupportedArchitectureError(
                    f"{param.name}: the target has it in layers {sorted(members)}, not in each of layers "
                    f"{param.first_layer}..{target_sizes['layers'] - 1}"
                )
            for layer, signal in zip(decoded_layers, self.decode_role_layers(param, target_sizes, stored_role, device, reuse_buffers=True),
                                     strict=True):
                if layer is not None and layer < param.first_layer:
                    continue
                name = members[layer][0]
                if name not in pending:
                    pending[name] = torch.empty(whole_shape, dtype=dtype, device=device)
                pending[name][part].copy_(signal.reshape(part_shape))
                parts_left[name] -= 1
                if parts_left[name] == 0:
                    yield canonical_to_full[name], pending.pop(name)
            _return_freed_memory()  # the role's decoding temporaries
        if pending:  # a tensor the learngene provides only some parts of
            raise UnsupportedArchitectureError(f"the learngene holds only some parts of {', '.join(sorted(pending))}")

    def _decoding_order(self, groups: dict, target_sizes: dict[str, int]) -> list[tuple[str, tuple]]:
        """The roles whose decoding holds the most beyond the model (the stored role, and one target
        slice with its intermediate) first, while the model is still mostly unmade. Roles that are
        parts of the same tensors stay together (a part-filled tensor is held until its last part)."""
        items = list(groups.items())
        held = [
            math.prod(self.config.role(stored_role or role).stored_shape) + 2 * math.prod(tensor_shape(param, target_sizes))
            for role, (param, _, stored_role) in items
        ]
        cluster = list(range(len(items)))  # the first role sharing a tensor with each role
        first_with: dict[str, int] = {}
        for index, (_, (_, members, _)) in enumerate(items):
            for name, _ in members.values():
                cluster[index] = min(cluster[index], first_with.setdefault(name, index))
        for index in range(len(items)):  # follow the chain to its first role
            cluster[index] = cluster[cluster[index]]
        cluster_held: dict[int, int] = {}
        for index, root in enumerate(cluster):
            cluster_held[root] = max(cluster_held.get(root, 0), held[index])
        order = sorted(range(len(items)), key=lambda i: (-cluster_held[cluster[i]], cluster[i], i))
        return [items[i] for i in order]

    def _decodable(self, model: nn.Module, groups: dict) -> dict[str, tuple[Param, dict, str | None]]:
        """The roles of the target that the learngene provides: each with its parameter as it is
        decoded, its tensors, and the stored role it reads (another one for an untied head built
        from tied embeddings). Roles it lacks (a new task head) are left to the model's own init."""
        # a model without an output head (a bare encoder) has nothing tied to its embeddings
        headless = self.architecture.library != "transformers" or model.get_output_embeddings() is None
        decodable = {}
        for role, (param, members) in groups.items():
            if param.tied_output and headless:
                param = dataclasses.replace(param, tied_output=False)
            stored_role = self._untied_head_source(param)
            if role not in self.config.roles and stored_role is None:
                logger.info("%s is not in the learngene; it keeps %s's initialisation", role, type(model).__name__)
                continue
            decodable[role] = (param, members, stored_role)
        return decodable

    def _initialise_the_rest(self, model: nn.Module, provided: set[str], dtype: torch.dtype, device: torch.device) -> list[str]:
        """Materialise in ``dtype`` on ``device`` every parameter of ``model`` the learngene did not
        provide (``provided``: full names, set into the model or streamed elsewhere) with the model's
        normal initialisation, tie the output head, and move the buffers; returns the names of the
        state-dict entries made here (fresh parameters and persistent buffers)."""
        tied_copies = set(getattr(model, "all_tied_weights_keys", None) or {})
        made = []
        for module_name, module in model.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for leaf, parameter in list(module._parameters.items()):
                name = prefix + leaf
                if parameter is None or name in tied_copies:
                    continue
                if name in provided:
                    parameter._is_hf_initialized = True  # transformers' initialisation skips it
                elif parameter.is_meta:
                    fresh = torch.empty(parameter.shape, dtype=dtype, device=device)
                    module._parameters[leaf] = nn.Parameter(fresh, requires_grad=parameter.requires_grad)
                    made.append(name)
            for key, buffer in module._buffers.items():
                if buffer is not None and buffer.device != device:
                    module._buffers[key] = buffer.to(device)
        if self.architecture.library == "transformers":
            model.initialize_weights()  # what the learngene did not provide (task heads); flagged tensors are kept
            model.tie_weights()
        elif made:  # diffusers initialises in its constructors (DiT zeroes its adaLN gates): take their values
            reference = type(model).from_config(dict(model.config)).state_dict()
            for name in made:
                model.get_parameter(name).data.copy_(reference[name])
        saved = set(model.state_dict(keep_vars=True))
        return made + [name for name, _ in model.named_buffers() if name in saved]

    def _instantiate_transformers(self, target: PretrainedConfig, auto_class: type) -> PreTrainedModel:
        """The target model on the meta device (buffers excepted): its weights are made when built."""
        try:
            with init_empty_weights(include_buffers=False), no_init_weights():  # weights are made once, when built
                if isinstance(auto_class, type) and issubclass(auto_class, PreTrainedModel):
                    if not isinstance(target, auto_class.config_class):
                        raise ValueError(f"{auto_class.__name__} takes a {auto_class.config_class.__name__}")
                    model = auto_class(target)
                else:
                    model = auto_class.from_config(target)
        except ValueError as error:
            raise FamilyMismatchError(
                f"{auto_class.__name__} has no model class for the '{target.model_type}' family of this learngene "
                f"({error.__class__.__name__}: {str(error).splitlines()[0]})"
            ) from None
        model.tie_weights()  # tied copies (an LM decoder) share one tensor and are filled once
        return model

    def _instantiate_diffusers(self, target: Any, model_class: type | None) -> nn.Module:
        """The target diffusers model, of the source's class unless a subclass of it is given."""
        import diffusers

        source_class = getattr(diffusers, target["_class_name"])
        model_class = model_class or source_class
        if not (isinstance(model_class, type) and issubclass(model_class, source_class)):
            raise FamilyMismatchError(
                f"this learngene builds {source_class.__name__} models (the {self.config.family} family), "
                f"not {getattr(model_class, '__name__', model_class)}"
            )
        with init_empty_weights(include_buffers=False):  # weights are made once, when built
            return model_class.from_config(target)


def _check_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A floating dtype from a dtype or its name (``"bfloat16"``); ``None`` is float32."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise LearngeneConfigError(f"dtype must be a floating torch dtype such as torch.bfloat16 or 'float16', got {dtype!r}")
    return dtype


def _set_tensor(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Put ``tensor`` in place of the parameter (or buffer) ``name``, marked as initialised."""
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name)
    old = module._parameters.get(leaf)
    if old is not None:
        tensor = nn.Parameter(tensor, requires_grad=old.requires_grad)
        tensor._is_hf_initialized = True
        module._parameters[leaf] = tensor
    else:
        module._buffers[leaf] = tensor


def _parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _set_config_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """Record the weights' dtype in the config, as ``from_pretrained(dtype=...)`` does."""
    if isinstance(getattr(model, "config", None), PretrainedConfig):
        model.config.dtype = dtype


def _save_model_config(model: nn.Module, folder: Path) -> None:
    """The config files ``save_pretrained`` writes beside the weights (and a generation config)."""
    if isinstance(model.config, PretrainedConfig):
        model.config.architectures = [type(model).__name__]  # as save_pretrained records it
        model.config.save_pretrained(folder)
        if getattr(model, "generation_config", None) is not None and model.can_generate():
            model.generation_config.save_pretrained(folder)
    else:
        model.save_config(folder)
