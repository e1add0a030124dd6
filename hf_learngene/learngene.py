"""The :class:`Learngene`: extract it from one pretrained model, save, load, and build models
of other sizes from it. It joins an architecture table (what each weight's axes mean) with a
method (how a signal on those axes is resized); neither knows of the other."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import transformers
from torch import nn
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)
from accelerate import init_empty_weights
from transformers.initialization import no_init_weights
from transformers.utils import logging

from .architectures import (
    ARCHITECTURES,
    Architecture,
    Param,
    architecture_for,
    config_as_dict,
    config_from_dict,
    expanded_shape,
    fan_in,
    full_tensor_shape,
    is_resizable,
    model_type_of,
    resolve_target_config,
    segment_index,
    tensor_shape,
)
from .architectures.sizing import SizeRequest
from .configs import LearngeneConfig
from .errors import (
    FamilyMismatchError,
    LearngeneConfigError,
    LearngeneLoadError,
    UnsupportedArchitectureError,
)
from .methods import SignalSpec, get_method
from .methods.base import BLOCK_BYTES, MIX_BYTES, Resizer
from .methods.rescaling import UNSTANDARDISED, affine, check_policy, standardize_
from .learngene_files import (
    MODEL_FILES,
    WEIGHTS_NAME,
    LearngeneReader,
    LearngeneWriter,
    ShardWriter,
    parse_shard_size,
    parse_storage_dtype,
)
from .saving import first_line, http_status, push_folder, write_folder_atomically

logger = logging.get_logger(__name__)

CONFIG_NAME = "config.json"


def _storage_key(role: str) -> str:
    """A ``ParameterDict`` key for a role name (module names may not contain dots)."""
    return role.replace(".", "__")


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
    prefix = (getattr(model, "base_model_prefix", "") or "\0") + "."
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
        state[name[len(prefix):] if name.startswith(prefix) else name] = tensor
    return state


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


def group_by_role(
    arch: Architecture, state: dict[str, torch.Tensor], what: str, config: Any
) -> dict[str, tuple[Param, dict[int | None, tuple[str, torch.Tensor]]]]:
    """Canonical tensors grouped by table role (fresh task heads left out); ``config`` is the
    model's, for tables whose roles follow the config (a UNet's blocks)."""
    groups: dict[str, tuple[Param, dict]] = {}
    unknown = []
    for name, tensor in state.items():
        if arch.is_fresh(name):
            continue
        found = arch.matches(name, config)
        if not found:
            unknown.append(name)
        for param, layer in found:
            groups.setdefault(param.role, (param, {}))[1][layer] = (name, tensor)
    if unknown:
        raise UnsupportedArchitectureError(
            f"the {arch.family} architecture table does not describe {len(unknown)} parameter(s) of the {what}: "
            f"{', '.join(unknown[:6])}{' …' if len(unknown) > 6 else ''}. This variant of the family is not supported."
        )
    return groups


def signal_spec(param: Param) -> SignalSpec:
    """What a method may know of a role: its axes, which are resizable, which are inputs, its
    name, whether a tied output head shares it, and how its heads are grouped."""
    axes = tuple(param.axes())
    inputs = [False] if param.layered else []
    for dim, names in enumerate(param.factors()):
        inputs += [dim == param.fan_in] * len(names)
    return SignalSpec(
        axes,
        tuple(is_resizable(a) for a in axes),
        tuple(inputs),
        param.writes_residual,
        role=param.role,
        tied_output=param.tied_output,
        head_groups=param.head_groups,
    )


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
        architecture_for(class_name)  # fail before loading weights of an unsupported family
        import diffusers

        return getattr(diffusers, class_name).from_pretrained(source, revision=revision), None
    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as error:
        raise LearngeneLoadError(f"cannot load the source model '{source}': {error}") from None
    architecture_for(config.model_type)  # fail before loading weights of an unsupported family
    model_class = AutoModel
    for name in config.architectures or []:
        if hasattr(transformers, name):
            model_class = getattr(transformers, name)
            break
    model = model_class.from_pretrained(source, revision=revision)
    return model, _load_processor(source, revision=revision)


def _read_source(source: str | os.PathLike, revision: str | None) -> tuple[Any, dict[str, Any], dict, Any]:
    """A source named by folder or Hub id: its config, its config as stored, its canonical tensors
    and its processor. Safetensors checkpoints are read lazily (each tensor when its role is
    stacked), without making the model; anything else is loaded whole with its model class."""
    from .checkpoint_reader import CheckpointReader, LazyReadUnsupported, checkpoint_files_patterns

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
            logger.info("reading %s through its model class: %s", source, reason)
        else:
            return reader.config, reader.stored_config_dict(), reader.lazy_state(), _load_processor(folder)
    model, processor = _load_source(source, revision=revision)
    return model.config, config_as_dict(model), canonical_state(model), processor


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


class Learngene(PreTrainedModel):
    """A compact, size-agnostic learngene: the stored tensors of one method, per parameter role.

    Its parameters are the learngene itself (for FRONT, the kept low-frequency DCT
    coefficients), so it can be trained like any module. Build models from it with
    :meth:`build` or ``hf_learngene.AutoModel*.from_learngene``.

    Example::

        lg = Learngene.extract("path/to/bert", method="front")
        lg.save_pretrained("bert-lg")
        model = AutoModelForSequenceClassification.from_learngene("bert-lg", size="mini", num_labels=2)
    """

    config_class = LearngeneConfig
    base_model_prefix = "learngene"
    main_input_name = "coefficients"
    _no_split_modules: list[str] = []

    def __init__(self, config: LearngeneConfig):
        super().__init__(config)
        self.coefficients = nn.ParameterDict(
            {
                _storage_key(role): nn.Parameter(torch.zeros(info["stored_shape"]))
                for role, info in config.roles.items()
            }
        )
        self.processor = None
        self._files: LearngeneReader | None = None  # set when loaded with low_cpu_mem_usage=True
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing to initialise: a learngene's values always come from a source model or a file."""

    # ------------------------------------------------------------------ extraction

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
    ) -> "Learngene":
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
            rescaling: how built tensors are scaled: ``"source_std"``, ``"fan_in"``, ``"none"`` or
                ``"preserve_function"`` (see :mod:`hf_learngene.methods.rescaling`);
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
                roles[param.role] = {
                    "axes": param.axes(),
                    "source_shape": list(expanded_shape(param, sizes)),
                    "stored_shape": list(stored.shape),
                    "mean": mean,
                    "std": std,
                    "fan_in": fan_in(param, sizes),
                }
                yield param.role, stored
                del stored  # written by now: not held while the next role is stacked
                _return_freed_memory()

        roles: dict[str, dict[str, Any]] = {}
        make_config = lambda: LearngeneConfig(
            family=arch.family,
            source_config=source_config,
            method=method,
            method_options=resizer.options(),
            rescaling=rescaling,
            roles=roles,
            source_name_or_path=source_name,
        )
        if save_directory is not None:  # each role is written as it is made: never all of them in memory
            _write_learngene(save_directory, make_config, encoded_roles(), processor, max_shard_size, storage_dtype)
            return cls.from_pretrained(save_directory, low_cpu_mem_usage=True)
        stored = dict(encoded_roles())
        learngene = cls(make_config())
        with torch.no_grad():
            for role, tensor in stored.items():
                learngene.coefficients[_storage_key(role)].copy_(tensor)
        learngene.processor = processor
        return learngene

    # ------------------------------------------------------------------ building

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.config.family]

    @property
    def source_config(self) -> Any:
        """The source's config: a ``PretrainedConfig``, or a diffusers model's frozen config dict."""
        return config_from_dict(self.config.source_config)

    def target_config(self, size: SizeRequest = None, **config_overrides: Any) -> Any:
        """The config :meth:`build` would use for ``size`` (a preset, a dict or a config)."""
        return resolve_target_config(self.architecture, self.source_config, size, **config_overrides)

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
        info = self.config.roles[role]
        target_shape = expanded_shape(param, target_sizes)
        source_shape = tuple(info["source_shape"])
        resizer = get_method(self.config.method, **self.config.method_options)
        stored = self._stored_tensor(role).to(device=device, dtype=torch.float32)
        stored = self._in_current_layout(stored, role, resizer, source_shape)
        spec = signal_spec(param)
        resized = target_shape != source_shape or tuple(info["stored_shape"]) != source_shape
        width = lambda shape: math.prod(n for axis, n in zip(spec.axes, shape) if axis != "layers")
        widens = width(target_shape) > width(source_shape)
        source_fan_in = info["fan_in"]
        if stored_role is not None or (source_fan_in is None and param.fan_in is not None):
            # a head read from the embeddings, or a learngene saved before its head had a fan-in
            source_fan_in = fan_in(param, self.architecture.axis_sizes(self.source_config))
        decode = lambda reuse=False: resizer.decode_layers(stored, spec, source_shape, target_shape, reuse)
        scale, shift = affine(
            info["mean"], info["std"], self.config.rescaling, source_fan_in, fan_in(param, target_sizes),
            resized=resized, widens=widens, z_std=lambda: _std_over(decode(reuse_buffers)),
        )
        for z in decode(reuse_buffers):
            if z.untyped_storage().data_ptr() == stored.untyped_storage().data_ptr():
                z = z.clone()  # an unchanged size may decode to the stored tensor itself: never change it in place
            yield z.mul_(scale).add_(shift)

    def _stored_tensor(self, role: str) -> torch.Tensor:
        """The stored tensor of ``role``: the parameter, or read from the learngene's files when it
        was loaded with ``low_cpu_mem_usage=True``."""
        parameter = self.coefficients[_storage_key(role)]
        if parameter.is_meta and self._files is not None:
            return self._files.get(role)
        return parameter.detach()

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
        from .model_cards import built_model_card

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
                built_model_card(model, Path(save_directory).resolve().name).save(staging / "README.md")

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
            stored_shape = self.config.roles[stored_role or role]["stored_shape"]
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
        self._record_provenance(model, target_sizes, size if isinstance(size, str) else None)
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
            layers = sorted(members) if param.layered else [None]
            if param.layered and layers != list(range(target_sizes["layers"])):
                raise UnsupportedArchitectureError(
                    f"{param.name}: the target has it in layers {layers}, not in each of its {target_sizes['layers']}"
                )
            for layer, signal in zip(layers, self.decode_role_layers(param, target_sizes, stored_role, device, reuse_buffers=True),
                                     strict=True):
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
            math.prod(self.config.roles[stored_role or role]["stored_shape"]) + 2 * math.prod(tensor_shape(param, target_sizes))
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

    def _record_provenance(self, model: nn.Module, target_sizes: dict[str, int], preset: str | None = None) -> None:
        """Name the learngene in the model's config, tags and Hub card (plain transformers/diffusers still load it)."""
        provenance = {
            "learngene": self.name_or_path or None,
            "method": self.config.method,
            "source": self.config.source_name_or_path,
            "preset": preset,
            "sizes": {k: v for k, v in target_sizes.items() if is_resizable(k)},
        }
        if self.config.family in ARCHITECTURES and self.architecture.library == "diffusers":
            model.register_to_config(_learngene=provenance)  # diffusers ignores "_" fields when it loads
            return
        model.config.learngene = provenance
        model.add_model_tags(["learngene", f"learngene-{self.config.method}"])
        # transformers' push_to_hub writes a generic card: this model's pushes write the learngene's
        model.push_to_hub = functools.partial(push_built_model, model)

    # ------------------------------------------------------------------ inspection

    def summary(self) -> dict[str, Any]:
        """Method, source, sizes and compression of this learngene."""
        source_values = sum(math.prod(info["source_shape"]) for info in self.config.roles.values())
        stored_values = sum(math.prod(info["stored_shape"]) for info in self.config.roles.values())
        sizes = self.architecture.axis_sizes(self.source_config)
        return {
            "family": self.config.family,
            "model_type": model_type_of(self.config.source_config),
            "source": self.config.source_name_or_path,
            "method": self.config.method,
            "method_options": self.config.method_options,
            "rescaling": self.config.rescaling,
            "source_sizes": {k: v for k, v in sizes.items() if is_resizable(k)},
            "roles": len(self.config.roles),
            "source_parameters": source_values,
            "stored_values": stored_values,
            "storage_dtype": self.config.storage_dtype,
            "stored_bytes": stored_values * parse_storage_dtype(self.config.storage_dtype).itemsize,
            "compression": source_values / max(stored_values, 1),
        }

    # ------------------------------------------------------------------ saving and loading

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        is_main_process: bool = True,
        state_dict: dict[str, torch.Tensor] | None = None,
        push_to_hub: bool = False,
        max_shard_size: int | str | None = None,
        token: str | bool | None = None,
        storage_dtype: torch.dtype | str | None = None,
        **push_options: Any,
    ) -> None:
        """Write ``config.json``, the tensors (``learngene.safetensors``, or shards and their index)
        and the processor files to a folder.

        The folder is written under a temporary name and moved into place when complete, so an
        interrupted save never leaves a half-written learngene. transformers' arguments that apply
        to a learngene are honoured; any other raises :class:`LearngeneConfigError` naming it.

        Args:
            is_main_process: ``False`` on the other processes of a distributed run: they write nothing.
            state_dict: tensors to save instead of the learngene's own, keyed like ``self.state_dict()``
                (``Trainer`` passes them).
            push_to_hub: after saving, upload the folder with the learngene's model card in one commit,
                to ``repo_id`` (default: the folder's name) with ``commit_message``, ``commit_description``,
                ``private``, ``revision``, ``create_pr`` and ``tags`` as in :meth:`push_to_hub`.
            max_shard_size: shard the tensors into files of at most this size (``"5GB"`` or bytes) with
                an index holding each shard's sha256, as transformers does; ``None``: one file.
            storage_dtype: ``"float32"`` (default: as the learngene was stored) or ``"bfloat16"`` (half
                the bytes; the tensors are decoded in float32 either way).
            token: the Hub token for ``push_to_hub``.
        """
        unknown = sorted(set(push_options) - set(PUSH_OPTIONS))
        if unknown:
            raise LearngeneConfigError(
                f"Learngene.save_pretrained got unexpected argument(s) {', '.join(unknown)}; it takes is_main_process, "
                f"state_dict, push_to_hub, max_shard_size, token and, with push_to_hub=True, {', '.join(PUSH_OPTIONS)}"
            )
        if push_options and not push_to_hub:
            raise LearngeneConfigError(
                f"{', '.join(sorted(push_options))} only apply when pushing: pass push_to_hub=True as well"
            )
        missing = [role for role in self.config.roles
                   if state_dict is not None and f"coefficients.{_storage_key(role)}" not in state_dict]
        if missing:
            raise LearngeneConfigError(
                f"the state_dict passed to save_pretrained has no 'coefficients.{_storage_key(missing[0])}' (role {missing[0]})"
            )
        max_shard_size = None if max_shard_size is None else parse_shard_size(max_shard_size)
        storage_dtype = parse_storage_dtype(storage_dtype or self.config.storage_dtype)
        if not is_main_process:
            return

        def tensors() -> Iterator[tuple[str, torch.Tensor]]:
            for role in self.config.roles:
                tensor = self._stored_tensor(role) if state_dict is None else state_dict[f"coefficients.{_storage_key(role)}"]
                yield role, tensor.detach()

        config = copy.deepcopy(self.config)
        folder = _write_learngene(save_directory, lambda: config, tensors(), self.processor, max_shard_size, storage_dtype)
        self.config.checksum = config.checksum
        if push_to_hub:
            repo_id = push_options.pop("repo_id", None) or folder.resolve().name
            self._push(repo_id, lambda upload: shutil.copytree(folder, upload, dirs_exist_ok=True), token=token,
                       **push_options)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        low_cpu_mem_usage: bool = False,
        **kwargs: Any,
    ) -> "Learngene":
        """Load a learngene from a local folder or a Hub repository.

        Each shard's sha256 is checked the first time one of its tensors is read. With
        ``low_cpu_mem_usage=True`` no tensor is read until a build needs it, role by role, so a
        learngene of a 70B source builds without being held in memory (its parameters stay on
        the meta device: load it without the flag to train it).
        """
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            folder = _download(str(pretrained_model_name_or_path), revision, cache_dir, token, local_files_only)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise LearngeneLoadError(f"{folder} is not a learngene folder: {CONFIG_NAME} is missing")
        try:
            config_dict = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise LearngeneLoadError(f"{config_path} is not valid JSON ({error}); the learngene is corrupt") from None
        if config_dict.get("model_type") != LearngeneConfig.model_type:
            raise LearngeneLoadError(
                f"{folder} holds a '{config_dict.get('model_type')}' model, not a learngene; "
                "extract one with Learngene.extract(...) or `hf-learngene extract`"
            )
        config = LearngeneConfig.from_dict(config_dict)
        if config.family not in ARCHITECTURES:
            raise LearngeneLoadError(f"{folder}: unknown learngene family '{config.family}'")
        files = LearngeneReader(folder, expected_checksum=config.checksum)
        for role, info in config.roles.items():
            shape = files.shape(role)  # names the file that lacks it
            if list(shape) != list(info["stored_shape"]):
                raise LearngeneLoadError(
                    f"{folder}: '{role}' has shape {list(shape)}, config.json says {info['stored_shape']}; "
                    "the learngene is corrupt"
                )
        with torch.device("meta"):  # the stored tensors become the parameters: nothing is allocated twice
            learngene = cls(config)
        if low_cpu_mem_usage:
            learngene._files = files
        else:
            for role in config.roles:
                learngene.coefficients[_storage_key(role)] = nn.Parameter(files.get(role))
        learngene.processor = _load_processor(folder)
        learngene.name_or_path = str(pretrained_model_name_or_path)
        return learngene

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = None,
        tags: list[str] | None = None,
    ):
        """Upload the learngene with a model card (library, tags, base model, method, size) to the Hub.

        Creates the repository if needed and pushes everything in one commit; returns the
        ``CommitInfo``. Token, endpoint and offline mode follow ``huggingface_hub``'s settings.
        ``max_shard_size`` is checked as in :meth:`save_pretrained`.
        """
        return self._push(
            repo_id, lambda folder: self.save_pretrained(folder, max_shard_size=max_shard_size),
            commit_message=commit_message, commit_description=commit_description, private=private, token=token,
            revision=revision, create_pr=create_pr, tags=tags,
        )

    def _push(
        self,
        repo_id: str,
        write_files: Callable[[Path], None],
        *,
        commit_message: str | None = None,
        tags: list[str] | None = None,
        **push_options: Any,
    ):
        """Upload what ``write_files(folder)`` writes, with the learngene's model card, in one commit."""
        from .model_cards import learngene_card

        def write(folder: Path, full_repo_id: str) -> None:
            write_files(folder)
            learngene_card(self, full_repo_id, tags).save(folder / "README.md")

        return push_folder(
            repo_id, write, what="learngene", commit_message=commit_message or f"Upload {self.config.method} learngene",
            **push_options,
        )


# the push_to_hub arguments save_pretrained(push_to_hub=True) takes, as transformers' does
PUSH_OPTIONS = ("repo_id", "commit_message", "commit_description", "private", "revision", "create_pr", "tags")


def _write_learngene(
    save_directory: str | os.PathLike,
    make_config: Callable[[], LearngeneConfig],
    tensors: Iterator[tuple[str, torch.Tensor]],
    processor: Any,
    max_shard_size: int | None,
    storage_dtype: torch.dtype,
) -> Path:
    """Write a learngene folder atomically, taking its tensors one at a time (a streaming
    extraction makes each as it goes); ``make_config`` is called once they are all written, so a
    config filled in while they were made is complete."""

    def write(staging: Path) -> None:
        with LearngeneWriter(staging, max_shard_size, storage_dtype) as writer:
            for role, tensor in tensors:
                writer.add(role, tensor)
                del tensor  # the loop variable would hold each role while the next one is made
        config = make_config()
        config.checksum = writer.result.checksum
        config.storage_dtype = writer.result.storage_dtype
        config.to_json_file(staging / CONFIG_NAME)
        if processor is not None:
            processor.save_pretrained(staging)

    return write_folder_atomically(save_directory, write)


def push_built_model(
    model: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str = "50GB",
    tags: list[str] | None = None,
):
    """Push a model built from a learngene with a card naming the learngene, method, source and sizes.

    Takes the arguments of transformers' ``push_to_hub`` and uploads ``model.save_pretrained``'s
    files and the card in one commit; returns the ``CommitInfo``. A built model's own
    ``push_to_hub`` is this function (``Learngene.build`` binds it), so ``model.push_to_hub(repo_id)``
    does the same; transformers' ``save_pretrained(push_to_hub=True)`` writes its generic card.
    """
    from .model_cards import built_model_card

    def write(folder: Path, full_repo_id: str) -> None:
        model.save_pretrained(folder, max_shard_size=max_shard_size)
        built_model_card(model, full_repo_id, tags).save(folder / "README.md")

    return push_folder(
        repo_id, write, what="model", commit_message=commit_message or "Upload model built from a learngene",
        commit_description=commit_description, private=private, token=token, revision=revision, create_pr=create_pr,
    )


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


def _return_freed_memory() -> None:
    """Hand the memory freed since the last call back to the system. glibc keeps freed blocks of
    the FFT temporaries in its heap, so a streaming build or extraction would otherwise look (and,
    to other processes, be) several hundred MB larger than what it holds."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _check_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A floating dtype from a dtype or its name (``"bfloat16"``); ``None`` is float32."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise LearngeneConfigError(f"dtype must be a floating torch dtype such as torch.bfloat16 or 'float16', got {dtype!r}")
    return dtype


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


def _canonical_names(model: nn.Module) -> dict[str, str]:
    """Each canonical name (as :func:`canonical_state` gives it) → the model's own state-dict name."""
    prefix = (getattr(model, "base_model_prefix", "") or "\0") + "."
    return {(name[len(prefix):] if name.startswith(prefix) else name): name for name in model.state_dict(keep_vars=True)}


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


def _stack_role(param: Param, members: dict, sizes: dict[str, int]) -> torch.Tensor:
    """One role's tensors (its part of each, for a concatenated dimension) stacked over layers in
    float32 and reshaped onto its expanded axes. Members may be lazy checkpoint tensors: each is
    read when its layer is copied in, so only the stacked role is ever held."""
    expected, part = full_tensor_shape(param, sizes), segment_index(param, sizes)
    if param.layered:
        layers = sorted(members)
        if layers != list(range(sizes["layers"])):
            raise UnsupportedArchitectureError(
                f"{param.name}: found layers {layers}, expected 0..{sizes['layers'] - 1} from the config"
            )
    else:
        layers = [None]
    for layer in layers:
        if tuple(members[layer][1].shape) != expected:
            raise UnsupportedArchitectureError(
                f"{param.name} has shape {tuple(members[layer][1].shape)} but the config implies {expected}"
            )
    stacked = torch.empty((len(layers), *tensor_shape(param, sizes)), dtype=torch.float32)
    for index, layer in enumerate(layers):
        tensor = members[layer][1]
        tensor = tensor.load() if hasattr(tensor, "load") else tensor.detach()
        stacked[index].copy_(tensor[part])
        del tensor
    return stacked.reshape(expanded_shape(param, sizes))


def _download(repo_id: str, revision, cache_dir, token, local_files_only) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
            )
        )
    except RevisionNotFoundError:
        raise LearngeneLoadError(f"revision '{revision}' does not exist in the Hub repository '{repo_id}'") from None
    except RepositoryNotFoundError:
        raise LearngeneLoadError(
            f"'{repo_id}' is neither a local folder nor a Hub repository you can access"
        ) from None
    except HFValidationError:
        raise LearngeneLoadError(f"'{repo_id}' is neither a local folder nor a valid Hub repository id") from None
    except LocalEntryNotFoundError:
        raise LearngeneLoadError(
            f"'{repo_id}' is not a local folder and is not in the Hub cache, and the Hub cannot be reached "
            "(offline mode or no connection); download it once while online or pass a local folder"
        ) from None
