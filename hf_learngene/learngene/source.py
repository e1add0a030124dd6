"""Reading a source model: its tensors under canonical names (lazily from a safetensors checkpoint,
through accelerate's hooks when offloaded), its config, and its tokenizer or image processor."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer, PreTrainedModel
from transformers.utils import CONFIG_NAME, logging

from ..architectures import architecture_for, config_as_dict
from ..errors import CheckpointMismatchError, LearngeneError, LearngeneLoadError
from ..saving import first_line, http_status

logger = logging.get_logger(__name__)


def _base_prefix(model: nn.Module) -> str:
    """The prefix of the base model's names (``"bert."``); diffusers models have none."""
    return (getattr(model, "base_model_prefix", "") or "\0") + "."


def canonical_state(model: nn.Module, keep_vars: bool = False) -> dict[str, torch.Tensor]:
    """The model's tensors under names relative to its base model, tied copies dropped.

    ``bert.encoder.layer.0...`` and ``encoder.layer.0...`` (a bare ``BertModel``) both become
    ``encoder.layer.0...``; heads outside the base model (``cls.*``, ``lm_head.*``) keep their names.
    diffusers models have no base-model prefix: their names are used as they are.

    A tied copy (an LM decoder sharing the word embeddings) is recognised by its shared storage.
    Tensors on the meta device all sit at address 0, so for them the model's tied-weights map
    (``all_tied_weights_keys``) says which are copies. With ``keep_vars=False`` the values of
    tensors that accelerate offloaded (``device_map`` with offload, ``cpu_offload``) are read
    through its hooks; tensors without values (``init_empty_weights``) stay on the meta device.
    """
    prefix = _base_prefix(model)
    tensors = model.state_dict(keep_vars=True)
    tied_copies = {
        target for target, source in (getattr(model, "all_tied_weights_keys", None) or {}).items() if source in tensors
    }
    offloaded = {}
    if not keep_vars:
        offloaded = _offloaded_values(model, [n for n, t in tensors.items() if t.is_meta and n not in tied_copies])
    seen: set[tuple] = set()
    state = {}
    for name, tensor in tensors.items():
        if tensor.is_meta or tensor.numel() == 0:  # no storage to compare: the object itself, or the tie map
            if name in tied_copies:
                continue
            identity = ("object", id(tensor))
        else:
            identity = ("storage", tensor.data_ptr(), tuple(tensor.shape))
        if identity in seen:  # a tied weight, e.g. an LM decoder sharing the word embeddings
            continue
        seen.add(identity)
        if not keep_vars:
            tensor = offloaded.get(name, tensor.detach())
        state[name.removeprefix(prefix)] = tensor
    return state


def _canonical_names(model: nn.Module) -> dict[str, str]:
    """Each canonical name (as :func:`canonical_state` gives it) → the model's own state-dict name."""
    prefix = _base_prefix(model)
    return {name.removeprefix(prefix): name for name in model.state_dict(keep_vars=True)}


def _offloaded_values(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The values of the meta tensors ``names`` that accelerate offloaded, read through its public
    ``align_module_device``; names without an offloaded copy are left out."""
    if not names:
        return {}
    from accelerate.utils import align_module_device, has_offloaded_params

    wanted, values = set(names), {}
    for module_name, module in model.named_modules():
        if not has_offloaded_params(module):
            continue
        prefix = f"{module_name}." if module_name else ""
        with align_module_device(module, torch.device("cpu")):  # loads the module's weights, offloads them after
            for name, tensor in module.state_dict(keep_vars=True).items():
                full_name = prefix + name
                if full_name in wanted and full_name not in values and not tensor.is_meta:
                    values[full_name] = tensor.detach()
    return values


def _is_model(source: Any) -> bool:
    """A transformers or diffusers model object (not a path)."""
    if isinstance(source, PreTrainedModel):
        return True
    try:
        from diffusers import ModelMixin
    except ImportError:
        return False
    return isinstance(source, ModelMixin)


def _diffusers_class_name(source: str | os.PathLike, revision: str | None) -> str | None:
    """The diffusers model class a folder or Hub repo's ``config.json`` names, or ``None``.

    ``None`` also when there is no ``config.json`` to read (missing, not JSON, no such repo or
    revision, Hub unreachable and not cached): transformers' loader then says what is wrong. Any
    other failure (a file that cannot be read, a token the Hub rejects, a gated repo) is a
    :class:`LearngeneLoadError` saying so, not a silent fallback to transformers.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    folder = Path(source)
    if folder.is_dir():
        config_path = folder / CONFIG_NAME
    else:
        try:
            config_path = Path(hf_hub_download(str(source), CONFIG_NAME, revision=revision))
        except GatedRepoError as error:
            raise LearngeneLoadError(
                f"cannot load the source model '{source}': it is a gated Hub repository and this token has no access "
                f"({first_line(error)}); request access on its Hub page or pass a token that has it"
            ) from None
        # EntryNotFoundError covers a missing file and LocalEntryNotFoundError (offline, not cached)
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
            return None
        except HfHubHTTPError as error:
            raise LearngeneLoadError(
                f"cannot load the source model '{source}': the Hub answered {http_status(error)}; check the token "
                "(`hf auth login`, HF_TOKEN or token=)"
            ) from None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    except OSError as error:
        raise LearngeneLoadError(f"cannot read {config_path}: {error}") from None
    return config.get("_class_name") if isinstance(config, dict) else None


def _load_source(source: str | os.PathLike, revision: str | None = None) -> tuple[nn.Module, Any]:
    """A pretrained model (with its task head, as saved) and its tokenizer or image processor."""
    class_name = _diffusers_class_name(source, revision)
    if class_name:
        arch = architecture_for(class_name)  # fail before loading weights of an unsupported family
        import diffusers

        return _checked_from_pretrained(getattr(diffusers, class_name), source, revision, arch), None
    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as error:
        raise LearngeneLoadError(f"cannot load the source model '{source}': {error}") from None
    arch = architecture_for(config.model_type)  # fail before loading weights of an unsupported family
    model_class = AutoModel
    for name in config.architectures or []:
        if hasattr(transformers, name):
            model_class = getattr(transformers, name)
            break
    # mismatched shapes are loaded afresh and reported, so that the refusal below can name them
    model = _checked_from_pretrained(model_class, source, revision, arch, ignore_mismatched_sizes=True)
    return model, _load_processor(source, revision=revision)


def _checked_from_pretrained(
    model_class: Any, source: str | os.PathLike, revision: str | None, arch: Any, **options: Any
) -> nn.Module:
    """``model_class.from_pretrained(source)``, refusing a checkpoint that lacks a weight or holds one of
    another shape, bar those the architecture marks fresh (task heads a learngene never keeps): the
    loader would fill them with random values and the learngene would carry them. Any failure of the
    loader is a :class:`LearngeneLoadError` saying what it was."""
    try:
        model, info = model_class.from_pretrained(source, revision=revision, output_loading_info=True, **options)
    except (MemoryError, torch.OutOfMemoryError, LearngeneError):
        raise
    except Exception as error:  # noqa: BLE001 - the loader raises many kinds; each becomes a clear error
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        message = " / ".join(lines[:4]) or type(error).__name__
        raise LearngeneLoadError(
            f"cannot load the source model '{source}' with {model_class.__name__}.from_pretrained: "
            f"{type(error).__name__}: {message}"
        ) from error
    prefix = _base_prefix(model)
    missing = [name for name in sorted(info.get("missing_keys") or []) if not arch.is_fresh(name.removeprefix(prefix))]
    mismatched = [
        (name, tuple(stored), tuple(expected))
        for name, stored, expected in sorted(info.get("mismatched_keys") or [])
        if not arch.is_fresh(name.removeprefix(prefix))
    ]
    if missing:
        raise CheckpointMismatchError(
            f"the checkpoint of '{source}' has no tensor for {len(missing)} of the model's weights "
            f"({', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}); from_pretrained initialised them "
            "with random values, which a learngene must not carry"
        )
    if mismatched:
        name, stored, expected = mismatched[0]
        raise CheckpointMismatchError(
            f"the checkpoint of '{source}' holds {len(mismatched)} weight(s) of another shape than the model's "
            f"config gives: '{name}' has shape {stored}, the model's {expected}"
            + (f" (and {', '.join(n for n, _, _ in mismatched[1:6])})" if len(mismatched) > 1 else "")
            + "; the config does not describe these weights"
        )
    return model


def _read_source(source: str | os.PathLike, revision: str | None) -> tuple[Any, dict[str, Any], dict, Any]:
    """A source named by folder or Hub id: its config, its config as stored, its canonical tensors
    and its processor. Safetensors checkpoints are read lazily (each tensor when its role is
    stacked), without making the model; anything else is loaded whole with its model class."""
    from ..checkpoint_reader import CheckpointReader, LazyReadUnsupported, checkpoint_files_patterns

    folder = Path(source)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(source), revision=revision, allow_patterns=checkpoint_files_patterns()))
        except Exception:  # noqa: BLE001 - the loading path below says precisely what is wrong
            folder = None
    if folder is not None:
        try:
            reader = CheckpointReader(folder)
        except LazyReadUnsupported as reason:
            size = _weights_size(folder)
            logger.warning(
                "reading %s through its model class: the whole model is loaded and held in memory%s (%s)",
                source, f" ({size / 1e9:.2f} GB of weights on disk)" if size else "", reason,
            )
        else:
            return reader.config, reader.stored_config_dict(), reader.lazy_state(), _load_processor(folder)
    model, processor = _load_source(source, revision=revision)
    return model.config, config_as_dict(model), canonical_state(model), processor


def _weights_size(folder: Path) -> int:
    """The bytes of the weight files in a model folder (what loading it whole reads), 0 when none."""
    suffixes = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack"}
    return sum(path.stat().st_size for path in folder.iterdir() if path.suffix in suffixes and path.is_file())


def _load_processor(folder: str | os.PathLike, revision: str | None = None) -> Any:
    """The tokenizer or image processor saved in ``folder``, or ``None``."""
    for loader in (AutoTokenizer, AutoImageProcessor):
        try:
            return loader.from_pretrained(folder, revision=revision)
        except ImportError as error:  # saved for a backend this environment lacks (e.g. torchvision)
            logger.warning("the processor in %s cannot be loaded here: %s", folder, str(error).strip().splitlines()[0])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
