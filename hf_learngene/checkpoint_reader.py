"""Read a pretrained model's safetensors checkpoint tensor by tensor, without building the model.

Extracting a learngene from a 7B model by loading it first holds the whole model in memory
(~100 GB in fp32); :class:`CheckpointReader` instead reads the headers of its (sharded) safetensors
files and gives each tensor only when asked, so extraction holds one role's layers at a time.

The reader answers what ``canonical_state(Model.from_pretrained(folder))`` would: the same
canonical names (base-model prefix stripped, tied copies dropped), the same values and dtypes.
To get there it builds the model on the meta device (no memory) and renames checkpoint keys with
the loader's own rules: transformers' conversion mapping (legacy ``LayerNorm.gamma``/``beta``,
ViT's ``encoder.layer.N.attention.attention.query`` → ``layers.N.attention.q_proj``, ...), its
base-model prefix added or stripped, its tying of a stored copy, its merging of per-expert tensors
(Mixtral's ``experts.N.w1/w3`` stacked into ``gate_up_proj``, read and merged one layer at a time);
diffusers' renames of deprecated attention blocks. A checkpoint those rules cannot turn into the
model's tensors raises a :class:`LazyReadUnsupported` error, and the caller loads the model the
ordinary way instead. A checkpoint that lacks a weight the model needs, or holds one of another
shape, is refused (:class:`CheckpointMismatchError`): loading it would put random values there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.utils import logging

from .architectures import architecture_for, config_as_dict
from .errors import CheckpointMismatchError, LearngeneLoadError
from .safetensors_file import DTYPES, SafetensorsFile, UnsupportedDtypeError

logger = logging.get_logger(__name__)

CONFIG_NAME = "config.json"
# the single file and the index of a sharded checkpoint, by library, in the order the loaders try them
CHECKPOINT_FILES = {
    "transformers": ("model.safetensors", "model.safetensors.index.json"),
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"),
}


class LazyReadUnsupported(LearngeneLoadError):
    """This checkpoint cannot be read tensor by tensor; load the model with ``from_pretrained`` instead."""


class NoSafetensorsError(LazyReadUnsupported):
    """The folder has no safetensors checkpoint (e.g. only ``pytorch_model.bin``)."""


class UnmappedCheckpointError(LazyReadUnsupported):
    """The checkpoint's tensors do not map one to one onto the model's (a rename or conversion
    this reader does not reproduce, a missing or reshaped tensor)."""


def checkpoint_files_patterns() -> list[str]:
    """``allow_patterns`` for ``snapshot_download``: config, safetensors weights (not their fp16
    variants or a ``consolidated.safetensors`` copy), index and tokenizer or image processor files."""
    weights = [
        pattern
        for single, _ in CHECKPOINT_FILES.values()
        for pattern in (single, single.replace(".safetensors", "-*.safetensors"))
    ]
    return [*weights, "*.json", "*.txt", "*.model", "*.tiktoken"]


class LazyTensor:
    """A checkpoint tensor not read yet: shape and dtype from the header, values on :meth:`load`."""

    is_meta = False  # Learngene.extract refuses meta tensors: these have values, they are just not read yet

    def __init__(self, reader: "CheckpointReader", name: str, shape: tuple[int, ...], dtype: torch.dtype):
        self.reader, self.name, self.shape, self.dtype = reader, name, torch.Size(shape), dtype

    def numel(self) -> int:
        return math.prod(self.shape)

    def load(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.reader.get(self.name, dtype)

    def __repr__(self) -> str:
        return f"LazyTensor({self.name!r}, shape={tuple(self.shape)}, dtype={self.dtype})"


class CheckpointReader:
    """A local model folder's config and safetensors checkpoint, read lazily under canonical names.

    Example::

        reader = CheckpointReader(folder)
        arch = architecture_for(reader.model_type())
        groups = group_by_role(arch, reader.lazy_state(), "source model", reader.config)
        ...  # then each role's LazyTensors are loaded (``.load()``) one role at a time

    Opening reads ``config.json`` and the safetensors headers only. Raises
    :class:`NoSafetensorsError` or :class:`UnmappedCheckpointError` (both :class:`LazyReadUnsupported`)
    when the caller should load the model instead, :class:`CheckpointMismatchError` for a checkpoint
    lacking a weight the model needs or holding one of another shape, and :class:`LearngeneLoadError`
    for a folder that no loader could read (a missing or corrupt shard, an invalid ``config.json`` or index).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        fields = _read_json(self.folder / CONFIG_NAME, "the model's config")
        self.library = "diffusers" if isinstance(fields, dict) and fields.get("_class_name") else "transformers"
        self._handles: dict[Path, Any] = {}
        self._unused: list[str] = []  # checkpoint keys no model tensor takes
        if self.library == "diffusers":
            self._files, self._index_metadata = self._checkpoint_files()
            self._model = _empty_diffusers_model(self.folder, fields["_class_name"])
            found = self._diffusers_keys()
        else:
            config = self._transformers_config()  # before the headers: a quantized file gets that message
            self._files, self._index_metadata = self._checkpoint_files()
            self._model = self._empty_transformers_model(config)
            found = self._transformers_keys()
        self.config = self._model.config
        self._sources = self._canonical_sources(found)  # canonical name -> (checkpoint key, dtype)

    # ------------------------------------------------------------------ what the checkpoint holds

    def model_type(self) -> str:
        """The config's ``model_type``, or a diffusers model's class name (what ``architecture_for`` takes)."""
        return type(self._model).__name__ if self.library == "diffusers" else self.config.model_type

    def stored_config_dict(self) -> dict[str, Any]:
        """The config dict a learngene stores, as ``config_as_dict`` gives for the loaded model."""
        return config_as_dict(self._model)

    def canonical_names(self) -> dict[str, tuple[int, ...]]:
        """Each canonical tensor name with its shape, from the file headers (no tensor data is read)."""
        return {name: self._shape(source) for name, (source, _) in self._sources.items()}

    def lazy_state(self) -> dict[str, LazyTensor]:
        """Every canonical tensor as a :class:`LazyTensor`, in the model's ``state_dict`` order."""
        return {
            name: LazyTensor(self, name, self._shape(source), dtype) for name, (source, dtype) in self._sources.items()
        }

    def get(self, canonical_name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """One tensor, read from its shard alone, in ``dtype`` or else in the dtype ``from_pretrained``
        gives it (the checkpoint's, or the config's ``dtype`` when that differs)."""
        try:
            source, loaded_dtype = self._sources[canonical_name]
        except KeyError:
            raise KeyError(f"{self.folder} has no tensor '{canonical_name}'") from None
        return self._load(source, loaded_dtype).to(dtype or loaded_dtype)

    def close(self) -> None:
        """Close the open shard files."""
        for handle in self._handles.values():
            handle.__exit__(None, None, None)
        self._handles.clear()

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ files

    def _checkpoint_files(self) -> tuple[dict[str, Path], dict[str, Any] | None]:
        """Checkpoint key -> the safetensors file holding it, and the index's metadata (``None`` for one file)."""
        single, index = (self.folder / name for name in CHECKPOINT_FILES[self.library])
        if single.is_file():
            return {key: single for key in self._handle(single).keys()}, None
        if not index.is_file():
            other_formats = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
            present = sorted(p.name for p in self.folder.iterdir() if p.suffix in other_formats)
            raise NoSafetensorsError(
                f"{self.folder} has no {single.name} or {index.name}"
                + (f" (it has {', '.join(present)})" if present else "")
            )
        contents = _read_json(index, "the checkpoint index")
        weight_map = contents.get("weight_map") if isinstance(contents, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise LearngeneLoadError(f"{index} has no weight_map; the checkpoint index is corrupt")
        files = {key: self.folder / name for key, name in weight_map.items()}
        for path in sorted(set(files.values())):
            if not path.is_file():
                raise LearngeneLoadError(
                    f"the shard {path.name} named in {index.name} is missing from {self.folder}; download the model again"
                )
        for key, path in files.items():
            if key not in self._handle(path).keys():
                raise LearngeneLoadError(f"{path} lacks the tensor '{key}' that {index.name} places there; it is corrupt")
        metadata = contents.get("metadata") if isinstance(contents.get("metadata"), dict) else {}
        return files, {**metadata, "all_checkpoint_keys": list(weight_map), "weight_map": dict(weight_map)}

    def _handle(self, path: Path) -> Any:
        """The open safetensors file; opening reads its header only."""
        if path not in self._handles:
            try:
                self._handles[path] = SafetensorsFile(path)  # plain reads: no mapped pages left behind
            except UnsupportedDtypeError as error:  # not corrupt: from_pretrained may still read it
                raise UnmappedCheckpointError(
                    f"unsupported dtype {error.dtype} in {path} (tensor '{error.name}'; supported: "
                    f"{', '.join(DTYPES)})"
                ) from None
            except (SafetensorError, OSError) as error:
                raise LearngeneLoadError(
                    f"{path} cannot be read as safetensors ({error}); the file is truncated or corrupt"
                ) from None
        return self._handles[path]

    def _shape(self, source: "str | _Merged") -> tuple[int, ...]:
        """The shape of a checkpoint key's tensor, or of a merged tensor, from the headers alone."""
        if isinstance(source, _Merged):
            return source.shape(lambda key: torch.empty(self._shape(key), device="meta"))
        return tuple(self._handle(self._files[source]).get_slice(source).get_shape())

    def _load(self, source: "str | _Merged", dtype: torch.dtype) -> torch.Tensor:
        """A checkpoint key's tensor as stored, or a merged tensor made as the loader makes it: each part
        cast to the model's ``dtype`` first, then merged."""
        if isinstance(source, _Merged):
            return source.merge(lambda key: self._read(key).to(dtype))
        return self._read(source)

    def _looked_in(self) -> str:
        """The checkpoint file(s) read, for messages."""
        single, index = CHECKPOINT_FILES[self.library]
        names = sorted({path.name for path in self._files.values()})
        if self._index_metadata is None:
            return str(self.folder / single)
        listed = ", ".join(names) if len(names) <= 4 else f"{len(names)} shards"
        return f"{self.folder / index} ({listed})"

    def _read(self, key: str) -> torch.Tensor:
        path = self._files[key]
        try:
            return self._handle(path).get_tensor(key)
        except (SafetensorError, OSError) as error:
            raise LearngeneLoadError(f"cannot read '{key}' from {path} ({error}); the file is truncated or corrupt") from None

    # ------------------------------------------------------------------ transformers

    def _transformers_config(self) -> Any:
        """The folder's config, refused here when its weights are not plain tensors (quantized) or not
        in the usual files."""
        try:
            config = AutoConfig.from_pretrained(self.folder)
        except (OSError, ValueError) as error:
            raise LearngeneLoadError(f"cannot load the source model '{self.folder}': {error}") from None
        quantization = getattr(config, "quantization_config", None)
        if quantization:
            method = quantization.get("quant_method") if isinstance(quantization, dict) else None
            method = method or getattr(quantization, "quant_method", None)
            raise UnmappedCheckpointError(
                f"{self.folder} holds a quantized checkpoint" + (f" ({method})" if method else "")
            )
        if getattr(config, "transformers_weights", None) or getattr(type(config), "extra_files", ()):
            raise UnmappedCheckpointError(f"{self.folder}: the config names weight files of its own")
        return config

    def _empty_transformers_model(self, config: Any) -> nn.Module:
        """The model ``_load_source`` would load, built on the meta device as ``from_pretrained`` builds it
        (same class, config and dtype), so its names, ties and dtypes are the loaded model's."""
        internals = _transformers_internals()
        model_class = next(
            (getattr(transformers, name) for name in config.architectures or [] if hasattr(transformers, name)),
            None,
        )
        if model_class is None:  # as _load_source: AutoModel's class for this config
            model_class = internals["model_class_for"](config, AutoModel._model_mapping)
        files = sorted(set(self._files.values()), key=lambda path: path.name)
        config, dtype = internals["dtype"]("auto", [str(p) for p in files], config, self._index_metadata, None, True)
        config.name_or_path = str(self.folder)
        with internals["contexts"](model_class.get_init_context(dtype, False, False, None)):
            return model_class(config)

    def _transformers_keys(self) -> dict[str, "str | _Merged"]:
        """Model key -> checkpoint key, renamed as transformers' ``from_pretrained`` renames them, or the
        checkpoint keys its conversion mapping merges into that tensor (a Mixtral layer's experts)."""
        internals = _transformers_internals()
        transforms = internals["conversions"](self._model)
        renamings = [t for t in transforms if isinstance(t, internals["renaming"])]
        converters = [t for t in transforms if isinstance(t, internals["converter"])]
        converter_of = {pattern: converter for converter in converters for pattern in converter.source_patterns}
        expected = self._model.state_dict()
        prefix = self._model.base_model_prefix
        rename = internals["rename"]
        found: dict[str, str | _Merged] = {}
        merged: dict[str, _Merged] = {}
        # the loader's order: a merged tensor's parts are stacked as they come (expert 2 before expert 10)
        for key in sorted(self._files, key=internals["natural_key"]):
            renamed, pattern = rename(key, renamings, converters, prefix, expected)
            if renamed not in expected and key in expected:  # as the loader: the key was right, bar the prefix
                renamed, pattern = rename(key, [], [], prefix, expected)
            if renamed not in expected:
                self._unused.append(key)
                continue
            if pattern is not None:
                converter = converter_of[pattern]
                if not _merges_only(converter, internals):
                    raise UnmappedCheckpointError(
                        f"{self.folder}: '{key}' is converted on load (split, merged or reshaped into {renamed})"
                    )
                merged.setdefault(renamed, _Merged(converter)).add(pattern, key)
                continue
            if renamed in found:
                raise UnmappedCheckpointError(f"{self.folder}: both '{found[renamed]}' and '{key}' load into {renamed}")
            found[renamed] = key
        for renamed, parts in merged.items():
            if renamed in found:
                raise UnmappedCheckpointError(f"{self.folder}: both '{found[renamed]}' and {parts} load into {renamed}")
            found[renamed] = parts
        if self._unused:  # from_pretrained ignores them too (with a warning)
            logger.info("%s: %d checkpoint tensor(s) the model does not use: %s", self.folder, len(self._unused),
                        ", ".join(self._unused[:6]))
        return found

    # ------------------------------------------------------------------ diffusers

    def _diffusers_keys(self) -> dict[str, str]:
        """Model key -> checkpoint key; diffusers renames deprecated attention blocks of a single file only."""
        keys = {key: key for key in self._files}
        if self._index_metadata is None:
            self._model._fix_state_dict_keys_on_load(keys)
        expected = self._model.state_dict()
        self._unused = [key for name, key in keys.items() if name not in expected]
        return {name: key for name, key in keys.items() if name in expected}

    # ------------------------------------------------------------------ canonical names

    def _canonical_sources(self, found: dict[str, "str | _Merged"]) -> dict[str, tuple["str | _Merged", torch.dtype]]:
        """Canonical name -> (checkpoint key, loaded dtype), as ``canonical_state`` names the loaded model.

        Tensors the loaded model shares are one tensor, named by the first in ``state_dict`` order;
        its value is the tie source's when the checkpoint stores it, else the stored copy's (the
        loader then ties the other way). A tied copy stored with a different value is not tied by
        the loader, so it stays a tensor of its own.
        """
        model = self._model
        tensors = model.state_dict(keep_vars=True)
        order = {name: i for i, name in enumerate(tensors)}
        group = {}  # name -> the names sharing its tensor
        by_object: dict[int, list[str]] = {}
        for name, tensor in tensors.items():
            group[name] = by_object.setdefault(id(tensor), [])
            group[name].append(name)
        ties = getattr(model, "all_tied_weights_keys", None) or {}
        for target, source in ties.items():
            if target not in tensors or source not in tensors or group[target] is group[source]:
                continue
            if target in found and source in found and not self._equal(found[target], found[source], tensors[source]):
                continue  # the loader warns and leaves them untied
            merged = sorted(group[source] + group[target], key=order.get)
            group[source][:] = merged
            for name in merged:
                group[name] = group[source]
        prefix = (getattr(model, "base_model_prefix", "") or "\0") + "."
        canonical = lambda name: name[len(prefix):] if name.startswith(prefix) else name
        sources, missing = {}, []
        for name, tensor in tensors.items():
            members = group[name]
            if members[0] != name:
                continue
            tie_sources = [source for target, source in ties.items() if target in members and source in members]
            stored = [n for n in tie_sources + members if n in found]
            if not stored:
                missing.append(canonical(name))
                continue
            source = found[stored[0]]
            if tuple(self._shape(source)) != tuple(tensor.shape):
                raise CheckpointMismatchError(
                    f"{self.folder}: '{source}' has shape {self._shape(source)}, the model's {name} "
                    f"{tuple(tensor.shape)}; the config does not describe these weights (read from "
                    f"{self._looked_in()})"
                )
            sources[canonical(name)] = (source, tensor.dtype)
        self._check_missing(missing)
        return sources

    def _equal(self, key: "str | _Merged", other: "str | _Merged", like: torch.Tensor) -> bool:
        """Whether two stored tensors are equal once loaded (in the model's dtype), as the loader compares tied copies."""
        first, second = self._load(key, like.dtype), self._load(other, like.dtype)
        return first.shape == second.shape and torch.equal(first.to(like.dtype), second.to(like.dtype))

    def _check_missing(self, missing: list[str]) -> None:
        """Model tensors the checkpoint lacks are freshly initialised by the loader: fine for task heads
        a learngene never keeps (left out here); any other would enter the learngene as random values,
        so the checkpoint is refused (loading the model instead would do just that)."""
        if not missing:
            return
        arch = architecture_for(self.model_type())
        kept = [name for name in missing if not arch.is_fresh(name)]
        if kept:
            unused = self._unused
            hint = (
                f". It holds {len(unused)} tensor(s) the model does not use ({', '.join(unused[:6])}"
                f"{' …' if len(unused) > 6 else ''}): a checkpoint of another layout or version?"
            )
            raise CheckpointMismatchError(
                f"{self.folder}: the checkpoint has no tensor for {len(kept)} of the model's weights "
                f"({', '.join(kept[:6])}{' …' if len(kept) > 6 else ''}), looked for in {self._looked_in()}; "
                "loading it would initialise them with random values" + (hint if unused else "")
            )


class _Merged:
    """A model tensor transformers' loader makes from several checkpoint tensors (a Mixtral layer's
    ``experts.N.w1``/``w3`` stacked per expert, then gate and up concatenated into ``gate_up_proj``).
    It is made with the converter's own operations, on the parts in the loader's order, so it equals
    the loaded tensor; only converters that merely stack and concatenate are taken."""

    def __init__(self, converter: Any):
        self.converter = converter
        self.parts: dict[str, list[str]] = {}  # the converter's source pattern -> checkpoint keys, in order

    def add(self, pattern: str, key: str) -> None:
        self.parts.setdefault(pattern, []).append(key)

    def merge(self, read: Callable[[str], torch.Tensor]) -> torch.Tensor:
        tensors = {pattern: [read(key) for key in keys] for pattern, keys in self.parts.items()}
        for operation in self.converter.operations:
            tensors = operation.convert(
                tensors, source_patterns=self.converter.source_patterns, target_patterns=self.converter.target_patterns
            )
        (tensor,) = tensors.values()
        return tensor

    def shape(self, empty: Callable[[str], torch.Tensor]) -> tuple[int, ...]:
        """The merged shape, from meta tensors of the parts' shapes (nothing read)."""
        try:
            return tuple(self.merge(empty).shape)
        except RuntimeError as error:  # parts that do not stack: an expert of another shape
            raise CheckpointMismatchError(f"{self} cannot be merged as the loader merges them: {error}") from None

    def __str__(self) -> str:
        keys = [key for keys in self.parts.values() for key in keys]
        return f"{keys[0]} … {keys[-1]} ({len(keys)} tensors merged)"


def _merges_only(converter: Any, internals: dict[str, Callable | type]) -> bool:
    """Whether a converter only stacks and concatenates whole tensors (what :class:`_Merged` reproduces)."""
    merging = (internals["stack"], internals["concatenate"])
    return (
        bool(converter.operations)
        and all(type(operation) in merging for operation in converter.operations)
        and getattr(converter, "quantization_operation", None) is None
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LearngeneLoadError(f"{path.parent} has no {path.name} ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LearngeneLoadError(f"{path} is not valid JSON ({error}); {what} is corrupt") from None
    except OSError as error:
        raise LearngeneLoadError(f"cannot read {path}: {error}") from None


def _empty_diffusers_model(folder: Path, class_name: str) -> nn.Module:
    """The diffusers model of ``folder``'s config on the meta device, built as ``from_pretrained`` builds it."""
    import accelerate
    import diffusers
    from diffusers.models.modeling_utils import no_init_weights as diffusers_no_init_weights

    architecture_for(class_name)  # an unsupported family fails here, as in _load_source
    model_class = getattr(diffusers, class_name, None)
    if model_class is None:
        raise UnmappedCheckpointError(f"{folder}: diffusers has no model class {class_name}")
    try:
        config = model_class.load_config(folder)
    except (OSError, ValueError) as error:
        raise LearngeneLoadError(f"cannot load the source model '{folder}': {error}") from None
    with diffusers_no_init_weights(), accelerate.init_empty_weights():
        return model_class.from_config(config)


def _transformers_internals() -> dict[str, Callable | type]:
    """The parts of transformers' loader this reader reuses so that it names, ties and casts tensors
    exactly as ``from_pretrained`` does. They are not public API: a transformers without them makes
    the caller load the model instead."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import (
            Concatenate,
            MergeModulelist,
            WeightConverter,
            WeightRenaming,
            dot_natural_key,
            rename_source_key,
        )
        from transformers.modeling_utils import _get_dtype
        from transformers.models.auto.auto_factory import _get_model_class
        from transformers.utils.generic import ContextManagers
    except ImportError as error:
        raise UnmappedCheckpointError(f"this transformers version's loader is not the one expected ({error})") from None
    return {
        "conversions": get_model_conversion_mapping,
        "renaming": WeightRenaming,
        "converter": WeightConverter,
        "rename": rename_source_key,
        "natural_key": dot_natural_key,
        "stack": MergeModulelist,
        "concatenate": Concatenate,
        "dtype": _get_dtype,
        "model_class_for": _get_model_class,
        "contexts": ContextManagers,
    }
