"""The :class:`Learngene` container: its stored tensors, one per role, and their records; saving,
loading and pushing it; its summary. Extraction, decoding and building come from their mixins."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from transformers import PreTrainedModel

from ..architectures import ARCHITECTURES, Architecture, config_from_dict, is_resizable, model_type_of
from ..configs import LearngeneConfig
from ..errors import LearngeneConfigError
from ..learngene_files import STORAGE_DTYPES, LearngeneReader, parse_shard_size, parse_storage_dtype
from ..saving import push_folder
from .building import LearngeneBuildingMixin
from .decoding import LearngeneDecodingMixin
from .extraction import LearngeneExtractionMixin
from .folder import _download, _open_tensors, _read_config, _write_learngene
from .roles import _storage_key
from .source import _load_processor

# the push_to_hub arguments save_pretrained(push_to_hub=True) takes, as transformers' does
PUSH_OPTIONS = ("repo_id", "commit_message", "commit_description", "private", "revision", "create_pr", "tags")


class Learngene(LearngeneExtractionMixin, LearngeneDecodingMixin, LearngeneBuildingMixin, PreTrainedModel):
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
                _storage_key(role): nn.Parameter(torch.zeros(record.stored_shape))
                for role, record in config.role_records().items()
            }
        )
        self.processor = None
        self._files: LearngeneReader | None = None  # set when loaded with low_cpu_mem_usage=True
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing to initialise: a learngene's values always come from a source model or a file."""

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.config.family]

    @property
    def source_config(self) -> Any:
        """The source's config: a ``PretrainedConfig``, or a diffusers model's frozen config dict."""
        return config_from_dict(self.config.source_config)

    def _stored_tensor(self, role: str) -> torch.Tensor:
        """The stored tensor of ``role``: the parameter, or read from the learngene's files when it
        was loaded with ``low_cpu_mem_usage=True``."""
        parameter = self.coefficients[_storage_key(role)]
        if parameter.is_meta and self._files is not None:
            return self._files.get(role)
        return parameter.detach()

    # ------------------------------------------------------------------ inspection

    def summary(self) -> dict[str, Any]:
        """Method, source, sizes and compression of this learngene."""
        records = self.config.role_records().values()
        source_values = sum(math.prod(record.source_shape) for record in records)
        stored_values = sum(math.prod(record.stored_shape) for record in records)
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

        The files are written under a temporary name and moved into place when complete, so an
        interrupted save never leaves a half-written learngene; other files in an existing folder
        are kept (see :func:`~hf_learngene.saving.write_folder_atomically`). transformers' arguments that apply
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
            # the learngene's own files only: the folder may hold others (a Trainer's checkpoints)
            self._push(repo_id, lambda upload: _write_learngene(upload, lambda: config, tensors(), self.processor,
                                                                max_shard_size, storage_dtype),
                       token=token, **push_options)

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
        subfolder: str = "",
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> Learngene:
        """Load a learngene from a local folder or a Hub repository (``subfolder`` inside either).

        Each shard's sha256 is checked the first time one of its tensors is read. With
        ``low_cpu_mem_usage=True`` no tensor is read until a build needs it, role by role, so a
        learngene of a 70B source builds without being held in memory (its parameters stay on
        the meta device: load it without the flag to train it). ``dtype`` is the parameters' dtype
        (default: as stored); builds decode in float32 either way. Any other argument raises
        :class:`LearngeneConfigError` naming it, rather than being ignored.
        """
        dtype = kwargs.pop("torch_dtype", dtype)  # transformers' former name
        if kwargs:
            raise LearngeneConfigError(
                f"Learngene.from_pretrained got unexpected argument(s) {', '.join(sorted(kwargs))}; it takes revision, "
                "cache_dir, token, local_files_only, low_cpu_mem_usage, subfolder and dtype (a learngene has no "
                "device_map or quantization: load it, then build the model with those)"
            )
        dtype = None if dtype == "auto" else STORAGE_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if dtype is not None:
            if dtype not in STORAGE_DTYPES.values():
                raise LearngeneConfigError(f"dtype={dtype!r} is not supported: pass 'float32', 'bfloat16', 'float16' "
                                           "(or the torch dtype), or 'auto' for the stored one")
            if low_cpu_mem_usage:
                raise LearngeneConfigError("dtype sets the dtype of loaded parameters, and low_cpu_mem_usage=True "
                                           "loads none; pass one of them")
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            folder = _download(str(pretrained_model_name_or_path), revision, cache_dir, token, local_files_only)
        folder = folder / subfolder
        config = _read_config(folder)
        files = _open_tensors(folder, config)
        with torch.device("meta"):  # the stored tensors become the parameters: nothing is allocated twice
            learngene = cls(config)
        if low_cpu_mem_usage:
            learngene._files = files
        else:
            for role in config.roles:
                tensor = files.get(role)
                learngene.coefficients[_storage_key(role)] = nn.Parameter(tensor if dtype is None else tensor.to(dtype))
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
        from ..model_cards import learngene_card

        def write(folder: Path, full_repo_id: str) -> None:
            write_files(folder)
            learngene_card(self, full_repo_id, tags).save(folder / "README.md")

        return push_folder(
            repo_id, write, what="learngene", commit_message=commit_message or f"Upload {self.config.method} learngene",
            **push_options,
        )
